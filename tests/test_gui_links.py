"""The canvas draws a dashed link from a MaxPool2D to the MaxUnpool2D that names it."""

from __future__ import annotations

from PySide6.QtCore import QPointF
from test_unpool import segnet_small

from gui.canvas.link_item import LinkItem
from gui.canvas.scene import GraphScene

pytest_plugins = ["gui_support"]


def test_the_unpool_is_linked_to_its_pool_and_follows_edits(qtbot):
    g = segnet_small()
    scene = GraphScene(g)
    try:
        assert list(scene.links) == [("p1", "u1")]
        link = scene.links[("p1", "u1")]
        assert isinstance(link, LinkItem) and link.scene() is scene
        assert link.source is scene.blocks["p1"] and link.target is scene.blocks["u1"]
        # moving the unpool moves the link's end
        before = link.path.pointAtPercent(1.0)
        g.move_node("u1", (before.x() + 300, 400))
        after = link.path.pointAtPercent(1.0)
        assert after != before and abs(after.y() - before.y()) > 100
        # re-pointing the setting re-links; clearing it removes the link
        g.set_config("u1", {"pool": "c1"})
        assert list(scene.links) == [("c1", "u1")] and link.scene() is None
        g.set_config("u1", {"pool": None})
        assert scene.links == {} and scene.blocks["u1"].links == set()
        g.set_config("u1", {"pool": "p1"})
        g.remove_node("p1")
        assert scene.links == {}
        assert not [i for i in scene.items() if isinstance(i, LinkItem)]
        assert isinstance(before, QPointF)
    finally:
        scene.detach()
