"""The solve stage distill and evaluate share: the request and settle steps (`stage`), the
rules that read a solution's think block and boxed answer (`solutions`), and math-verify
grading (`grading`). Both jobs import it; it imports neither, so a teacher's solution and an
evaluated model's answer are read and graded by the same code without the two stages
importing each other (issue #13)."""
