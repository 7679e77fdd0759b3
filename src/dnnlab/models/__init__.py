"""The network as a Keras object: build it from a `ModelConfig`, compile it, train it many small
steps per compiled call, and snapshot its whole state. Nothing here knows about run folders."""
