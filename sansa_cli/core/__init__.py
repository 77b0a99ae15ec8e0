"""The few-shot machinery: building SAM2, the pseudo-video, the model, images, prompts,
references, devices."""
