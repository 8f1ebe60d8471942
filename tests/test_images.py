"""Images in the data model: Image/ImageText items, input kinds checked before any work, pixel
hashes in cache keys, saved datasets with images, the scenes generator and the digits set."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.dataset import Corpus, Queries
from embedlab.datasets import load_dataset_spec, load_saved_dataset, save_dataset, synthetic_scenes
from embedlab.datasets.digits import digits
from embedlab.datasets.scenes import COLOURS, SHAPES
from embedlab.errors import InvalidInputError, StateError
from embedlab.hashing import HashingEncoder
from embedlab.media import Image, ImageText, InputKind, accepted_inputs, pack_images, unpack_images
from embedlab.pipeline import Pipeline
from embedlab.pixels import PixelEncoder


def square(value: int, side: int = 4) -> Image:
    return Image(np.full((side, side), value, dtype=np.uint8))


def test_image_pixels_are_validated_and_converted():
    assert Image(np.zeros((3, 5))).shape == (3, 5, 1)
    assert Image(np.ones((2, 2, 3), dtype=np.float32)).pixels.max() == 255
    assert Image(np.array([[True, False]])).pixels.tolist() == [[[255], [0]]]
    for bad, message in [(np.zeros((2, 2, 2)), "1|3"), (np.zeros((0, 4)), "shape"),
                         (np.full((2, 2), np.nan), "NaN"), (np.full((2, 2), 1.5), r"\[0, 1\]"),
                         (np.full((2, 2), 300), "0..255"), (np.zeros(4), "shape")]:
        with pytest.raises(InvalidInputError, match=message):
            Image(bad)


def test_content_hash_follows_the_pixels_and_the_shape():
    a = np.zeros((4, 4, 3), dtype=np.uint8)
    b = a.copy()
    b[3, 3, 2] = 1
    assert Image(a).content_hash == Image(a.copy()).content_hash
    assert Image(a).content_hash != Image(b).content_hash
    assert Image(a).content_hash != Image(a.reshape(8, 2, 3)).content_hash
    assert ImageText(Image(a), "x").content_hash != ImageText(Image(a), "y").content_hash


def test_resize_averages_boxes_when_shrinking_and_repeats_when_growing():
    pixels = np.arange(16, dtype=np.uint8).reshape(4, 4)
    small = Image(pixels).resized(2, 2).pixels[:, :, 0]
    assert small.tolist() == [[np.rint(pixels[:2, :2].mean()), np.rint(pixels[:2, 2:].mean())],
                              [np.rint(pixels[2:, :2].mean()), np.rint(pixels[2:, 2:].mean())]]
    assert Image(pixels[:2, :2]).resized(4, 4).pixels[:, :, 0].tolist() == \
        np.repeat(np.repeat(pixels[:2, :2], 2, 0), 2, 1).tolist()


def test_items_follow_texts_and_images():
    image = square(9)
    queries = Queries(["t", "i", "c"], ["text only", "", "make it red"], images=[None, image, image])
    kinds = [type(item) for item in queries.inputs()]
    assert kinds == [str, Image, ImageText]
    assert queries.input_kinds == {InputKind.TEXT: 1, InputKind.IMAGE: 1, InputKind.IMAGE_TEXT: 1}
    selected = queries.select(["c", "i"])
    assert selected.images == (image, image) and selected.texts == ("make it red", "")
    with pytest.raises(InvalidInputError, match="2 images for 3"):
        Queries(["a", "b", "c"], ["", "", ""], images=[image, image])
    with pytest.raises(InvalidInputError, match="expected embedlab.media.Image"):
        Corpus(["a"], [""], images=[np.zeros((2, 2))])


def _old_style_hash(ids, texts):
    digest = hashlib.sha256()
    for doc_id, text in zip(ids, texts):
        for part in (doc_id, "", text):
            encoded = part.encode()
            digest.update(len(encoded).to_bytes(8, "little"))
            digest.update(encoded)
    return digest.hexdigest()


def test_text_hashes_are_unchanged_and_pixels_enter_image_hashes():
    assert Corpus(["a", "b"], ["x", "y"]).content_hash == _old_style_hash(["a", "b"], ["x", "y"])
    one = Corpus(["a", "b"], ["", ""], images=[square(1), square(2)])
    other = Corpus(["a", "b"], ["", ""], images=[square(1), square(3)])
    assert one.content_hash != other.content_hash != Corpus(["a", "b"], ["", ""]).content_hash
    q1 = Queries(["q"], ["edit"], images=[square(1)])
    assert q1.content_hash != Queries(["q"], ["edit"], images=[square(2)]).content_hash


class CountingHashing(HashingEncoder):
    calls = 0

    def encode_documents(self, texts):
        CountingHashing.calls += 1
        return super().encode_documents(texts)


def test_a_text_encoder_fed_images_fails_before_any_encoding():
    corpus = Corpus(["a", "b"], ["", "caption"], images=[square(1), square(2)])
    pipeline = Pipeline(encoder=CountingHashing(dim=8), progress=False)
    with pytest.raises(InvalidInputError, match=r"hashing takes text documents.*1 image, 1 image\+text"):
        pipeline.build(corpus)
    assert CountingHashing.calls == 0
    assert accepted_inputs(HashingEncoder(), "queries") == {InputKind.TEXT}


def test_an_image_encoder_fed_text_or_composed_queries_fails_before_any_work():
    diagonal = Image(np.eye(4, dtype=np.uint8) * 200)
    anti = Image(np.fliplr(np.eye(4, dtype=np.uint8)) * 200)
    corpus = Corpus(["a", "b"], ["", ""], images=[diagonal, anti])
    pipeline = Pipeline(encoder=PixelEncoder(size=2), progress=False)
    with pytest.raises(InvalidInputError, match=r"pixels takes image queries.*1 text"):
        pipeline.check_inputs(corpus, Queries(["q"], ["a text"]))
    with pytest.raises(InvalidInputError, match="pixels takes image documents"):
        pipeline.build(Corpus(["a"], ["a text"]))
    pipeline.build(corpus)
    with pytest.raises(InvalidInputError, match=r"image\+text"):
        pipeline.search(Queries(["q"], ["edit"], images=[square(1)]), k=1)
    composed = Pipeline(encoder=PixelEncoder(size=2, composed="image"), progress=False)
    composed.build(corpus)
    assert composed.search(Queries(["q"], ["edit"], images=[anti]), k=1).doc_ids[0, 0] == "b"


def test_a_reranker_that_takes_text_refuses_an_image_corpus():
    class TextReranker:
        name = "text-reranker"
        config = None

        def rerank(self, ranking, queries, corpus):
            raise AssertionError("never called")

    pipeline = Pipeline(encoder=PixelEncoder(size=2), reranker=TextReranker(), progress=False)
    with pytest.raises(InvalidInputError, match="reranker 'text-reranker'.*text-reranker takes text documents"):
        pipeline.build(Corpus(["a"], [""], images=[square(1)]))


def test_the_experiment_runner_checks_query_kinds_before_building(tmp_path):
    config = tmp_path / "scenes.toml"
    config.write_text('[dataset]\nname = "scenes"\nn_train = 2\nn_test = 2\nsplit = "test-seen"\n'
                      '[experiment]\nmetrics = ["R@1"]\n'
                      '[[pipeline]]\nname = "pixels"\nencoder = { name = "pixels", size = 4 }\n')
    with pytest.raises(InvalidInputError, match=r"pixels takes image queries.*image\+text"):
        embedlab.run_experiment(config, cache=False, progress=False)


def test_image_embeddings_are_cached_by_pixel_content(tmp_path):
    corpus = Corpus(["a", "b", "c"], ["", "", ""], images=[square(10), square(200), square(90, side=6)])
    cache = EmbeddingCache(tmp_path)
    queries = Queries(["q"], [""], images=[Image(np.eye(4, dtype=np.uint8) * 200)])
    for expected_hits in (0, 2):
        pipeline = Pipeline(encoder=PixelEncoder(size=4), cache=cache, progress=False)
        pipeline.build(corpus)
        pipeline.search(queries, k=2)
        assert pipeline.timings.cache_hits == expected_hits
    edited = Queries(["q"], [""], images=[Image(np.eye(4, dtype=np.uint8) * 100)])
    pipeline.search(edited, k=2)
    assert pipeline.timings.cache_hits == 2  # unchanged: the edited query image missed the cache


def test_packed_images_round_trip_and_bad_tables_are_reported():
    images = [square(3), None, Image(np.arange(24, dtype=np.uint8).reshape(2, 4, 3))]
    back = unpack_images(**{k.removeprefix("image_"): v for k, v in pack_images(images).items()})
    assert back[1] is None
    assert [b.content_hash for b in (back[0], back[2])] == [images[0].content_hash, images[2].content_hash]
    with pytest.raises(InvalidInputError, match="shape table needs"):
        unpack_images(np.zeros(5, dtype=np.uint8), np.array([[2, 2, 1]]))


def test_saved_datasets_keep_images_qrels_and_exclusions(tmp_path):
    dataset = synthetic_scenes(n_train=3, n_test=2, size=16, seed=1)
    save_dataset(dataset, tmp_path / "scenes")
    back = load_dataset_spec(path=tmp_path / "scenes")
    assert back.corpus.content_hash == dataset.corpus.content_hash
    assert back.queries.content_hash == dataset.queries.content_hash
    assert back.qrels == dataset.qrels and back.exclude == dataset.exclude
    assert back.corpus.attributes["caption"].tolist() == dataset.corpus.attributes["caption"].tolist()
    assert back.metadata == dataset.metadata
    pixels = tmp_path / "scenes" / "corpus_image_pixels.npy"
    raw = bytearray(pixels.read_bytes())
    raw[-1] ^= 1
    pixels.write_bytes(bytes(raw))
    with pytest.raises(StateError, match="checksum mismatch"):
        load_saved_dataset(tmp_path / "scenes")


def test_saved_text_datasets_keep_titles_unicode_and_attributes(tmp_path):
    corpus = Corpus(["d1", "d2"], ["Grüße, 世界", ""], ["a title", ""],
                    {"year": np.array([2001, 2002]), "lang": np.array(["de", None], dtype=object)})
    dataset = embedlab.Dataset("text", corpus, Queries(["q1"], ["hello"]), {"test": {"q1": {"d1": 1}}})
    back = load_saved_dataset(save_dataset(dataset, tmp_path / "text"))
    assert back.corpus.content_hash == corpus.content_hash and back.corpus.images is None
    assert back.corpus.titles == ("a title", "") and back.queries.texts == ("hello",)
    assert back.corpus.attributes["year"].tolist() == [2001, 2002]
    assert back.corpus.attributes["lang"].tolist() == ["de", None]


def test_images_open_from_npy_and_png(tmp_path):
    from PIL import Image as PILImage

    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    np.save(tmp_path / "a.npy", pixels)
    PILImage.fromarray(pixels).save(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.npy").content_hash == Image(pixels).content_hash
    assert Image.open(tmp_path / "a.png").content_hash == Image(pixels).content_hash
    with pytest.raises(InvalidInputError, match="does not exist"):
        Image.open(tmp_path / "missing.png")


def _objects(caption: str) -> set[str]:
    return {f"{c} {s}" for c in COLOURS for s in SHAPES if f"{c} {s}" in caption}


def test_scenes_are_seeded_and_hold_out_attribute_combinations():
    dataset = synthetic_scenes(n_train=60, n_test=20, seed=3)
    again = synthetic_scenes(n_train=60, n_test=20, seed=3)
    assert dataset.corpus.content_hash == again.corpus.content_hash
    assert dataset.corpus.content_hash != synthetic_scenes(n_train=60, n_test=20, seed=4).corpus.content_hash
    held = set(dataset.metadata["heldout"])
    assert len(held) == 3
    captions = dict(zip(dataset.corpus.ids.tolist(), dataset.corpus.attributes["caption"].tolist()))
    splits = dict(zip(dataset.corpus.ids.tolist(), dataset.corpus.attributes["split"].tolist()))
    assert not any(_objects(c) & held for d, c in captions.items() if splits[d] == "train")
    position = dataset.corpus.position
    query_position = {q: i for i, q in enumerate(dataset.queries.ids.tolist())}
    for split in ("train", "test-seen", "test-unseen"):
        assert len(dataset.qrels[split]) == (60 if split == "train" else 20)
        for query, judged in dataset.qrels[split].items():
            (target,), (reference,) = judged, dataset.exclude[split][query]
            assert bool(_objects(captions[target]) & held) == (split == "test-unseen")
            assert not _objects(captions[reference]) & held
            assert captions[target] != captions[reference]
            ref_image = dataset.corpus.images[position[reference]]
            query_image = dataset.queries.images[query_position[query]]
            assert query_image.content_hash == ref_image.content_hash
            assert not np.array_equal(ref_image.pixels, dataset.corpus.images[position[target]].pixels)


def test_the_instruction_describes_the_edit_between_reference_and_target():
    dataset = synthetic_scenes(n_train=40, n_test=5, seed=0)
    captions = dict(zip(dataset.corpus.ids.tolist(), dataset.corpus.attributes["caption"].tolist()))
    texts = dict(zip(dataset.queries.ids.tolist(), dataset.queries.texts))
    for query, judged in dataset.qrels["train"].items():
        (target,), (reference,) = judged, dataset.exclude["train"][query]
        instruction = texts[query]
        before, after = _objects(captions[reference]), _objects(captions[target])
        if instruction.startswith("turn the "):
            named, colour = instruction[len("turn the "):].rsplit(" ", 1)
            assert named in before and f"{colour} {named.split()[1]}" in after
        elif instruction.endswith(("small", "large")):
            assert before == after and instruction.split()[-1] in captions[target]
        else:
            assert instruction.startswith("make the ") and before != after


def test_pixel_retrieval_on_the_real_digits_set():
    dataset = digits(n_queries=60, seed=0)
    split = dataset.split("test")
    pipeline = Pipeline(encoder=PixelEncoder(size=8, channels=1), progress=False)
    pipeline.build(dataset.corpus)
    ranking = pipeline.search(split.queries, k=1)
    labels = dict(zip(dataset.corpus.ids.tolist(), dataset.corpus.attributes["digit"].tolist()))
    correct = [ranking.doc_ids[i, 0] in split.qrels[q] for i, q in enumerate(ranking.query_ids.tolist())]
    assert np.mean(correct) >= 0.9  # 1-NN on raw pixels; chance is about 0.1
    assert len(set(labels.values())) == 10
