"""Zachary's karate club (1977): 34 members, 78 friendships, the club's split into two factions.

Shipped inside the core so that graph examples and tests run on a fresh clone without
``../shared``. Nodes are named ``1``..``34`` as in the DeepWalk ``karate.adjlist``; the labels are
the faction each member joined (``Mr. Hi`` or ``Officer``, networkx's ``club`` attribute).
``tests/test_graph_data.py`` checks both against the files in ``../shared/data/karate`` when present.
"""

from __future__ import annotations

from embedlab.graph.graph import Graph, graph_from_edges, label_matrix

#: Each member's friends with a higher number.
_FRIENDS = {
    1: (2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 18, 20, 22, 32), 2: (3, 4, 8, 14, 18, 20, 22, 31),
    3: (4, 8, 9, 10, 14, 28, 29, 33), 4: (8, 13, 14), 5: (7, 11), 6: (7, 11, 17), 7: (17,),
    9: (31, 33, 34), 10: (34,), 14: (34,), 15: (33, 34), 16: (33, 34), 19: (33, 34), 20: (34,),
    21: (33, 34), 23: (33, 34), 24: (26, 28, 30, 33, 34), 25: (26, 28, 32), 26: (32,), 27: (30, 34),
    28: (34,), 29: (32, 34), 30: (33, 34), 31: (33, 34), 32: (33, 34), 33: (34,),
}
#: Members who followed the instructor, Mr. Hi; the others followed the club's officer.
MR_HI = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 17, 18, 20, 22})


def karate_graph() -> Graph:
    """The karate club graph with faction labels."""
    edges = [(str(a), str(b)) for a, friends in _FRIENDS.items() for b in friends]
    graph = graph_from_edges(edges, node_ids=[str(i) for i in range(1, 35)], name="karate")
    factions = [(str(i), "Mr. Hi" if i in MR_HI else "Officer") for i in range(1, 35)]
    labels, names = label_matrix(factions, graph.node_ids, name="karate")
    return Graph(graph.adjacency, graph.node_ids, False, labels, names, name="karate")
