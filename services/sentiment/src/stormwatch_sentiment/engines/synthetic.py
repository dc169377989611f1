"""Build a BERT-shaped sequence classifier as ONNX with random weights, without torch.

Tests need the real loading code (tokenizer files, ``config.json``, an ONNX graph) without a
hub download, and the benchmark needs a graph of XLM-R-base's shape: inference speed depends
on the shape, not on the weights. The graph is written with the ``onnx`` helper API: post-LN
encoder layers (self-attention, GELU feed-forward), a tanh pooler over the masked token mean
and a linear classifier, with dynamic batch and sequence axes and inputs ``input_ids`` and
``attention_mask`` (int64), output ``logits``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


@dataclass(frozen=True, slots=True)
class Shape:
    vocab: int = 250_002
    hidden: int = 768
    layers: int = 12
    heads: int = 12
    intermediate: int = 3_072
    max_positions: int = 514
    num_labels: int = 3


XLMR_BASE = Shape()
TINY = Shape(vocab=128, hidden=64, layers=2, heads=4, intermediate=128, max_positions=130)


def build_graph(shape: Shape, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []
    h, heads = shape.hidden, shape.heads
    head_dim = h // heads

    def weight(name: str, dims: tuple[int, ...], std: float = 0.02) -> str:
        arr = rng.standard_normal(dims, dtype=np.float32) * np.float32(std)
        inits.append(numpy_helper.from_array(arr, name))
        return name

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: Iterable[str], out: str, **attrs: object) -> str:
        nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def layer_norm(x: str, prefix: str) -> str:
        gamma = const(f"{prefix}.g", np.ones(h, dtype=np.float32))
        beta = const(f"{prefix}.b", np.zeros(h, dtype=np.float32))
        return node("LayerNormalization", [x, gamma, beta], f"{prefix}.out", axis=-1, epsilon=1e-5)

    def dense(x: str, prefix: str, n_in: int, n_out: int) -> str:
        w = weight(f"{prefix}.w", (n_in, n_out), std=1.0 / float(np.sqrt(n_in)))
        b = const(f"{prefix}.b", np.zeros(n_out, dtype=np.float32))
        return node("Add", [node("MatMul", [x, w], f"{prefix}.mm"), b], f"{prefix}.out")

    # Embeddings: word + position (sliced to the sequence length).
    word = node("Gather", [weight("emb.word", (shape.vocab, h), 1.0), "input_ids"], "emb.w.out")
    seq_shape = node("Shape", ["input_ids"], "ids.shape")
    seq_len = node(
        "Slice", [seq_shape, const("c1", np.array([1])), const("c2", np.array([2]))], "seq.len"
    )
    pos = node(
        "Slice",
        [
            weight("emb.pos", (shape.max_positions, h)),
            const("c0", np.array([0])),
            seq_len,
            const("c0ax", np.array([0])),
        ],
        "emb.p.out",
    )
    x = layer_norm(node("Add", [word, pos], "emb.sum"), "emb.ln")

    # Additive attention mask (B, 1, 1, S): 0 where attended, -10000 where padded.
    mask = node("Cast", ["attention_mask"], "mask.f", to=TensorProto.FLOAT)
    mask = node("Sub", [const("one", np.array(1.0, dtype=np.float32)), mask], "mask.inv")
    mask = node("Mul", [mask, const("neg", np.array(-10000.0, dtype=np.float32))], "mask.add")
    mask = node("Unsqueeze", [mask, const("ax12", np.array([1, 2]))], "mask.4d")

    split_shape = const("split.shape", np.array([0, 0, heads, head_dim]))
    merge_shape = const("merge.shape", np.array([0, 0, h]))
    scale = const("scale", np.array(1.0 / np.sqrt(head_dim), dtype=np.float32))
    sqrt2 = const("sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))
    half = const("half", np.array(0.5, dtype=np.float32))
    one = "one"

    for i in range(shape.layers):
        p = f"l{i}"

        def heads_of(t: str, name: str, perm: list[int], p: str = p) -> str:
            r = node("Reshape", [t, split_shape], f"{p}.{name}.r")
            return node("Transpose", [r], f"{p}.{name}.t", perm=perm)

        q = heads_of(dense(x, f"{p}.q", h, h), "q", [0, 2, 1, 3])
        k = heads_of(dense(x, f"{p}.k", h, h), "k", [0, 2, 3, 1])
        v = heads_of(dense(x, f"{p}.v", h, h), "v", [0, 2, 1, 3])
        att = node("Mul", [node("MatMul", [q, k], f"{p}.qk"), scale], f"{p}.qk.s")
        att = node("Softmax", [node("Add", [att, mask], f"{p}.qk.m")], f"{p}.att", axis=-1)
        ctx = node(
            "Transpose", [node("MatMul", [att, v], f"{p}.ctx")], f"{p}.ctx.t", perm=[0, 2, 1, 3]
        )
        ctx = node("Reshape", [ctx, merge_shape], f"{p}.ctx.r")
        x = layer_norm(node("Add", [x, dense(ctx, f"{p}.o", h, h)], f"{p}.res1"), f"{p}.ln1")
        f = dense(x, f"{p}.ff1", h, shape.intermediate)
        erf = node("Erf", [node("Div", [f, sqrt2], f"{p}.gelu.d")], f"{p}.gelu.e")
        f = node(
            "Mul",
            [node("Mul", [f, half], f"{p}.gelu.h"), node("Add", [erf, one], f"{p}.gelu.a")],
            f"{p}.gelu",
        )
        f = dense(f, f"{p}.ff2", shape.intermediate, h)
        x = layer_norm(node("Add", [x, f], f"{p}.res2"), f"{p}.ln2")

    # Masked mean over tokens (not the first token): with random weights the first position
    # barely depends on the text, and tests need labels that vary with the input.
    m3 = node("Unsqueeze", ["mask.f", const("ax2", np.array([2]))], "mask.3d")
    summed = node(
        "ReduceSum",
        [node("Mul", [x, m3], "pool.masked"), const("ax1", np.array([1]))],
        "pool.sum",
        keepdims=0,
    )
    count = node("ReduceSum", [m3, "ax1"], "pool.count", keepdims=0)
    mean = node("Div", [summed, count], "pool.mean")
    pooled = node("Tanh", [dense(mean, "pool", h, h)], "pooled")
    w = weight("cls.w", (h, shape.num_labels), std=1.0)
    b = const("cls.b", np.zeros(shape.num_labels, dtype=np.float32))
    node("Add", [node("MatMul", [pooled, w], "cls.mm"), b], "logits")

    graph = helper.make_graph(
        nodes,
        "synthetic_bert_classifier",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", shape.num_labels])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def save_graph(model: onnx.ModelProto, path: Path) -> None:
    """Graphs over 2 GB cannot be one protobuf; XLM-R-base (1.1 GB) still can."""
    onnx.save_model(model, str(path))


def write_tokenizer(out_dir: Path, words: Iterable[str], model_max_length: int = 128) -> None:
    """A local WordLevel tokenizer ([CLS] text [SEP]) that ``AutoTokenizer`` can load."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocab = {tok: i for i, tok in enumerate(specials)}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))  # noqa: S106
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",  # noqa: S106
        pad_token="[PAD]",  # noqa: S106
        cls_token="[CLS]",  # noqa: S106
        sep_token="[SEP]",  # noqa: S106
        model_max_length=model_max_length,
    )
    fast.save_pretrained(str(out_dir))


def write_config(out_dir: Path, shape: Shape, id2label: Mapping[int, str], **extra: object) -> None:
    """A ``config.json`` like a hub model's; only ``id2label`` and sizes matter here."""
    config = {
        "architectures": ["BertForSequenceClassification"],
        "model_type": "bert",
        "vocab_size": shape.vocab,
        "hidden_size": shape.hidden,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "intermediate_size": shape.intermediate,
        "max_position_embeddings": shape.max_positions,
        "id2label": {str(k): v for k, v in id2label.items()},
        "label2id": {v: int(k) for k, v in id2label.items()},
        **extra,
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def build_model_dir(
    out_dir: Path,
    shape: Shape,
    words: Iterable[str],
    id2label: Mapping[int, str] | None = None,
    seed: int = 0,
    quantize: bool = True,
) -> Path:
    """A complete model directory: ``model.onnx`` (+ ``model.int8.onnx``), tokenizer, config."""
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = id2label or {0: "negative", 1: "neutral", 2: "positive"}
    write_config(out_dir, shape, labels)
    write_tokenizer(out_dir, words)
    save_graph(build_graph(shape, seed), out_dir / "model.onnx")
    if quantize:
        from stormwatch_sentiment.engines.onnx_engine import quantize_int8

        quantize_int8(out_dir / "model.onnx", out_dir / "model.int8.onnx")
    return out_dir
