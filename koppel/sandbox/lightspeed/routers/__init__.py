"""One router per resource family of the emulated Lightspeed eCom API."""
