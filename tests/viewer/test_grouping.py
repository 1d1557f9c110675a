"""The layer list's blocks and short names (pure Python)."""
from cnnengine.viewer.grouping import Group, components, group_rows, leaf_depth, short_name

RESNET = ["/conv1/Conv", "/relu/Relu", "/maxpool/MaxPool",
          "/layer1/layer1.0/conv1/Conv", "/layer1/layer1.0/relu/Relu", "/layer1/layer1.0/conv2/Conv",
          "/layer1/layer1.0/Add", "/layer1/layer1.0/relu_1/Relu",
          "/layer1/layer1.1/conv1/Conv", "/layer1/layer1.1/relu/Relu", "/layer1/layer1.1/conv2/Conv",
          "/layer1/layer1.1/Add", "/layer1/layer1.1/relu_1/Relu",
          "/avgpool/GlobalAveragePool", "/Flatten", "/fc/Gemm"]


def flatten(tree):
    out = []
    for e in tree:
        out.extend(flatten(e.children) if isinstance(e, Group) else [e])
    return out


def test_components_of_slash_and_dotted_names():
    assert components("/layer1/layer1.0/conv1/Conv") == ["layer1", "layer1.0", "conv1", "Conv"]
    assert components("_blocks.3._expand_conv") == ["_blocks", "_blocks.3", "_expand_conv"]
    assert components("features.0.1") == ["features", "features.0", "features.0.1"]
    assert components("conv1") == ["conv1"]


def test_resnet_blocks_in_execution_order():
    tree = group_rows(RESNET)
    assert flatten(tree) == list(range(len(RESNET)))      # read top to bottom: execution order
    labels = [e.label if isinstance(e, Group) else RESNET[e] for e in tree]
    assert labels == ["/conv1/Conv", "/relu/Relu", "/maxpool/MaxPool", "layer1", "/avgpool/GlobalAveragePool",
                      "/Flatten", "/fc/Gemm"]
    layer1 = tree[3]
    assert [g.label for g in layer1.children] == ["layer1.0", "layer1.1"]
    assert layer1.children[1].rows() == list(range(8, 13))
    depth = leaf_depth(tree)
    assert short_name(RESNET[5], depth=depth[5], op="Conv") == "conv2"
    assert short_name(RESNET[6], depth=depth[6], op="Add") == "Add"          # nothing but the op is left
    assert short_name(RESNET[7], depth=depth[7], op="Relu") == "relu_1"
    assert short_name(RESNET[0], depth=depth[0], op="Conv") == "conv1"


def test_short_names_keep_the_tail():
    name = "/features/features.3/conv/conv.0/conv.0.0/Conv"
    assert short_name(name, op="Conv") == "features.3/conv.0.0"           # levels repeating the next dropped
    assert short_name(name, depth=2, op="Conv") == "conv.0.0"
    assert short_name("_blocks.12._depthwise_conv", op="Conv") == "_blocks.12._depthwise_conv"
    cut = short_name("_blocks.12._depthwise_conv", limit=16, op="Conv")
    assert cut == "…" + "_blocks.12._depthwise_conv"[-15:] and len(cut) == 16


def test_long_blocks_split_one_level_deeper_short_ones_not():
    names = ["/features/features.0/Conv"]
    for i in range(24):          # a dense block: 24 layers of 6 ops
        names += [f"/features/features.4/layers.{i}/{part}" for part in
                  ("Concat", "norm1/BatchNormalization", "relu1/Relu", "conv1/Conv", "relu2/Relu", "conv2/Conv")]
    names += ["/features/features.5/BatchNormalization", "/classifier/Gemm"]
    tree = group_rows(names)
    assert flatten(tree) == list(range(len(names)))
    features = tree[0]
    block = [g for g in features.children if isinstance(g, Group)][0]
    assert block.label == "features.4" and len(block.children) == 24
    assert all(isinstance(g, Group) and len(g.children) == 6 for g in block.children)
    assert block.children[7].label == "layers.7"
    # a block of a few layers stays flat below its second level
    small = group_rows([f"/a/a.0/b{i}/Conv" for i in range(5)])
    assert [isinstance(c, Group) for c in small[0].children[0].children] == [False] * 5


def test_flat_names_and_a_block_interrupted_twice():
    flat = ["conv1", "relu1", "pool1", "fc"]
    assert group_rows(flat) == [0, 1, 2, 3]
    names = ["b.0.conv", "b.0.relu", "x", "b.0.add", "b.0.out"]
    tree = group_rows(names)
    assert flatten(tree) == list(range(5))
    assert [e.label if isinstance(e, Group) else e for e in tree] == ["b", 2, "b"]
