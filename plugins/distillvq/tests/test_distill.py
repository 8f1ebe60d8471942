"""Pieces of the distillation: teacher neighbours, self-exclusion for pseudo-queries, ListNet."""

from __future__ import annotations

import numpy as np
import torch
from embedlab_distillvq.distill import drop_self, listnet, teacher_neighbours


def test_teacher_neighbours_are_the_exact_top_k(data):
    docs, queries = data
    expected = np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(teacher_neighbours(queries, docs, 7), expected)


def test_drop_self_removes_the_query_document_or_the_last():
    neighbours = np.array([[4, 1, 2], [0, 5, 6], [7, 8, 9]])
    np.testing.assert_array_equal(drop_self(neighbours, np.array([4, 5, 3])), [[1, 2], [0, 6], [7, 8]])


def test_listnet_is_minimal_when_student_matches_teacher():
    teacher = torch.tensor([[3.0, 1.0, 0.0]])
    same, flipped = listnet(teacher, teacher.clone()), listnet(teacher, -teacher)
    entropy = -(torch.softmax(teacher, 1) * torch.log_softmax(teacher, 1)).sum()
    assert torch.isclose(same, entropy) and flipped > same
