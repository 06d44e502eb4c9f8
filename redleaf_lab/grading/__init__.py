"""Graded lab exercises: checkers that run a student's code against the real device models
and the kernel, and the grader behind `redleaf-lab grade` (the `make grade` of the course).

How an exercise works. The lab notebook (labs/NN-*.ipynb) is the instructor version, in
nbgrader's format: a *solution* cell holds the student's function (or a whole domain),
the solution between `### BEGIN SOLUTION` / `### END SOLUTION`; a *test* cell (nbgrader
metadata: grade, locked, points, grade_id) calls a checker of this package, which raises
`ExerciseFailed` with a message naming what went wrong. Hidden tests sit in the same or
a second test cell between `### BEGIN HIDDEN TESTS` / `### END HIDDEN TESTS`; nbgrader
removes them from the student version and `redleaf-lab grade` (grader.py) puts the
instructor's test cells back, as nbgrader's autograde does.

Student code never runs with more rights than the code it replaces: `splice.py` copies
the driver or domain folder, puts the student's function in place of the method (by
qualified name), and the kernel's loader checks and loads the copy like any domain. A
whole student domain (lab 1) is written to a folder and loaded the same way.

Adding exercises (labs 05+ too):
1. write a checker `check_<what>(student_fn, ...)` in `grading/labNN.py`: copy the domain
   with `splice.student_domain(base, {"file.py": {"Class.method": fn}}, workdir)`, boot a
   kernel with `checks.fresh_kernel()` (it fails the check on leaked heap objects), load the
   copy, drive it, and raise `ExerciseFailed("<what the student did wrong>")`;
2. in the notebook, a solution cell `def method(self, ...):` with the markers, and test cells
   with nbgrader metadata {"grade": true, "locked": true, "solution": false, "points": P,
   "grade_id": "labNN-<name>"} calling the checker; hidden calls between the hidden markers;
3. add a deliberately wrong solution under tests/grading/wrong/ and a row in
   tests/grading/test_grader.py (WRONG_SOLUTIONS) with the message it must produce.
`redleaf-lab grade NN` discovers the exercises from the notebook's metadata: nothing to
register. Each test cell runs alone after the solution cells (in a fresh process, outside
IPython): it imports what it uses, and solution and test cells use no magics.
A checker may also plumb the copy (`splice.rewrite_file`, `splice.add_file`): lab 5 shrinks
rv6fs's buffer cache, lab 8 adds a table module whose methods are the student's and points
the domain's import at it; each hook fails loudly if the domain's text changed.
Modules: checks (shared), splice, interfaces (graded interfaces), lab00..lab08 (checkers),
notebook (cells and metadata), grader + runner (each test in a fresh process with a time
limit), folders (`grade LAB FOLDER`: a student's domain folder), course (nbgrader),
classroom (JupyterHub: try-it and course modes), footprint (kernel RSS benchmark).
"""
