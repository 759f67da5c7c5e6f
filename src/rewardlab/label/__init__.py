"""People in the loop: the labelling web app, its durable store and the simulated rater."""
