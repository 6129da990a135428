"""Generated graphs for the benchmarks (shared by the engine and canvas benches)."""

from engine.graph import Graph


def residual_graph(blocks: int = 500) -> Graph:
    """A ResNet-like chain of about ``blocks`` blocks: conv-bn-relu-conv-bn-add-relu units."""
    g = Graph()
    x = g.add_node("Input", {"channels": 3, "height": 32, "width": 32}, pos=(0, 0))
    col = 1

    def add(type_id, params=None):
        nonlocal col
        node = g.add_node(type_id, params, pos=(col * 230, (col % 4) * 110))
        col += 1
        return node

    stem, relu = add("Conv2d", {"filters": 16}), add("ReLU")
    g.connect(x.id, 0, stem.id, 0)
    g.connect(stem.id, 0, relu.id, 0)
    prev = relu
    while len(g) < blocks - 3:
        c1, b1, r1 = add("Conv2d", {"filters": 16}), add("BatchNorm"), add("ReLU")
        c2, b2, s, r2 = add("Conv2d", {"filters": 16}), add("BatchNorm"), add("Add"), add("ReLU")
        for a, b in ((prev, c1), (c1, b1), (b1, r1), (r1, c2), (c2, b2), (b2, s), (s, r2)):
            g.connect(a.id, 0, b.id, 0)
        g.connect(prev.id, 0, s.id, 1)
        prev = r2
    gap, fc, head = add("GlobalAvgPool"), add("Dense", {"units": 10}), add("ClassificationOutput")
    for a, b in ((prev, gap), (gap, fc), (fc, head)):
        g.connect(a.id, 0, b.id, 0)
    return g


def middle_conv(g: Graph) -> str:
    convs = [nid for nid, n in g.nodes.items() if n.type == "Conv2d"]
    return convs[len(convs) // 2]
