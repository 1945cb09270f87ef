"""One router per resource; each route parses, calls one intake function and shapes the answer."""
