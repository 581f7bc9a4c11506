"""Small pure helpers of ui/ that pages lean on."""
from ui.widgets import distinct


def test_labels_that_repeat_are_told_apart_and_others_are_kept():
    # Two uploads named model.safetensors: Compare keys its figures and table rows on these labels.
    labels = ["Upload: model.safetensors", "Bundled: z2", "Upload: model.safetensors"]
    assert distinct(labels) == ["Upload: model.safetensors (1)", "Bundled: z2", "Upload: model.safetensors (2)"]
    assert len(set(distinct(labels))) == len(labels)
    assert distinct(["a", "b"]) == ["a", "b"]
