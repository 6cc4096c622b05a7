"""The optional transformers models of curation, built tiny and random, saved to a local folder."""

import numpy as np
import pytest
import torch
from PIL import Image

from scene4d.curate.depth import transformers_depth
from scene4d.curate.masks import segmentation_masks
from scene4d.errors import Scene4DError

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def depth_model(tmp_path_factory):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    torch.manual_seed(0)
    backbone = Dinov2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        image_size=56,
        patch_size=14,
        out_features=["stage1", "stage2"],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=16,
        fusion_hidden_size=8,
        head_hidden_size=8,
        neck_hidden_sizes=[8, 16],
        reassemble_factors=[2, 1],
    )
    folder = tmp_path_factory.mktemp("depth_anything")
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=False, do_pad=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def segmentation_model(tmp_path_factory):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    torch.manual_seed(0)
    config = SegformerConfig(
        num_encoder_blocks=1,
        depths=[1],
        sr_ratios=[1],
        hidden_sizes=[8],
        patch_sizes=[7],
        strides=[4],
        num_attention_heads=[1],
        mlp_ratios=[2],
        decoder_hidden_size=8,
        num_labels=3,
        id2label={0: "road", 1: "person", 2: "car"},
        label2id={"road": 0, "person": 1, "car": 2},
    )
    folder = tmp_path_factory.mktemp("segformer")
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_depth_model_output_is_an_inverted_normalised_pipeline_prediction(depth_model):
    from transformers import pipeline

    frames = np.random.default_rng(0).random((2, 40, 50, 3)).astype(np.float32)
    relative = transformers_depth(depth_model)(frames)
    assert relative.shape == (2, 40, 50)
    reference = pipeline("depth-estimation", model=str(depth_model), device="cpu")
    for frame, ours in zip(frames, relative, strict=True):
        disparity = reference(Image.fromarray((frame * 255).astype(np.uint8)))["predicted_depth"].numpy()
        normalised = (disparity - disparity.min()) / (disparity.max() - disparity.min())
        np.testing.assert_allclose(1.0 / ours, 0.05 + 0.95 * normalised, atol=1e-4)


def test_segmentation_masks_mark_movable_classes_as_instances(segmentation_model):
    from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor

    frames = np.random.default_rng(1).random((2, 32, 32, 3)).astype(np.float32)
    masks = segmentation_masks(segmentation_model)(frames)
    model = SegformerForSemanticSegmentation.from_pretrained(segmentation_model).eval()
    processor = SegformerImageProcessor.from_pretrained(segmentation_model)
    for frame, mask in zip(frames, masks, strict=True):
        with torch.no_grad():
            logits = model(**processor(images=(frame * 255).astype(np.uint8), return_tensors="pt")).logits
        classes = torch.nn.functional.interpolate(logits, (32, 32), mode="bilinear")[0].argmax(0).numpy()
        np.testing.assert_array_equal(mask > 0, np.isin(classes, [1, 2]))  # person and car move, road does not


def test_missing_models_name_the_path(tmp_path):
    with pytest.raises(Scene4DError, match="depth model not found"):
        transformers_depth(tmp_path / "nothing")
    with pytest.raises(Scene4DError, match="segmentation model not found"):
        segmentation_masks(tmp_path / "nothing")
