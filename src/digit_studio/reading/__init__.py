"""Reading a drawing: the sketchpad value becomes an ink map (inputs), the ink is cut into symbols
(segmentation), each symbol becomes a 28×28 crop with the transform that made it (crops), and the reader
puts them together into one `Reading` (reader)."""
