from stormwatch_cli.main import main

main()
