"""The passes between elaboration and the backends, in the order the pipeline runs them."""
