"""The network canvas: a QGraphicsView of blocks and wires that follows the graph document."""
