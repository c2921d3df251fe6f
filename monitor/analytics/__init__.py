"""Analytics over stored detections: the brand report and its SQL views."""
