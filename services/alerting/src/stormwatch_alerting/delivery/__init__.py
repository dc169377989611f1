"""Getting alerts to people: rendering per channel, notifiers behind one interface."""
