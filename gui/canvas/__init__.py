"""The canvas: a QGraphicsScene that follows engine.Graph's events and the view users work in."""
