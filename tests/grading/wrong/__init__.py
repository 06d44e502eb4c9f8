"""Deliberately wrong solutions of the graded lab exercises: each file is the source of one
solution cell (its grade_id in tests/grading/test_grader.py (WRONG_SOLUTIONS)), wrong in one way
that the checker must name. Not imported: the grader runs them as notebook cells."""
