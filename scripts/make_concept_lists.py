"""Remake promptcot_ray/data/concept_lists.jsonl, the project's own small concept-list file.

Each line is `{"id", "level", "concepts": [5 strings]}`: the foundational concepts a
competition problem might test. Lists are drawn from a hand-written vocabulary grouped into
topics; most concepts of a list come from one topic (popular ones more often), the rest
from a related topic or another topic of the same area, so co-occurrence has realistic
structure. A few repeat occurrences use a variant spelling (lower case, final period) so
pool normalisation has something to do. Deterministic: same seed, same file.

Run: `python scripts/make_concept_lists.py [--lists 300] [--seed 2025]`.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from promptcot_ray.records import LEVELS, make_id

# area -> topic -> concepts, most common first within a topic.
VOCABULARY: dict[str, dict[str, list[str]]] = {
    "algebra": {
        "polynomials": [
            "Vieta's formulas relating roots and coefficients of a polynomial",
            "Factor theorem for polynomials",
            "Remainder theorem for polynomial division",
            "Rational root theorem",
            "Fundamental theorem of algebra",
            "Symmetric polynomials and Newton's identities",
            "Lagrange interpolation of polynomials",
            "Multiplicity of a polynomial root and the derivative",
            "For an integer polynomial P, a - b divides P(a) - P(b)",
            "Complex conjugate root theorem for real polynomials",
            "Discriminant of a quadratic equation",
            "Quadratic formula",
            "Completing the square",
        ],
        "inequalities": [
            "AM-GM inequality",
            "Cauchy-Schwarz inequality",
            "QM-AM-GM-HM inequality chain",
            "Jensen's inequality for convex functions",
            "Rearrangement inequality",
            "Schur's inequality",
            "Hölder's inequality",
            "Chebyshev's sum inequality",
            "Power mean inequality",
            "Muirhead's inequality for symmetric sums",
            "Homogenization of symmetric inequalities",
            "Convexity and concavity of real functions",
        ],
        "functions": [
            "Cauchy's functional equation",
            "Injective, surjective and bijective functions",
            "Fixed points of a function",
            "Monotonic functions",
            "Composition and inverse functions",
            "Even and odd functions",
            "Periodic functions",
            "Floor function and its properties",
            "Absolute value equations and inequalities",
        ],
        "sequences": [
            "Arithmetic sequences and series",
            "Geometric sequences and series",
            "Linear recurrence relations with constant coefficients",
            "Characteristic equation of a linear recurrence",
            "Telescoping sums",
            "Fibonacci numbers and their identities",
            "Sums of the first n squares and cubes",
            "Mathematical induction",
            "Strong induction",
            "Properties of logarithms",
            "Change of base formula for logarithms",
            "Laws of exponents",
            "Systems of linear equations",
        ],
        "complex numbers": [
            "Complex numbers in polar form",
            "De Moivre's theorem",
            "Roots of unity",
            "The sum of the n-th roots of unity is zero",
            "Modulus and argument of a complex number",
            "Euler's formula for complex exponentials",
            "Complex multiplication as rotation and scaling in the plane",
            "Conjugate of a complex number and |z|^2 = z times its conjugate",
        ],
    },
    "number theory": {
        "divisibility": [
            "Fundamental theorem of arithmetic (unique prime factorization)",
            "Euclidean algorithm for the greatest common divisor",
            "Bézout's identity",
            "Properties of gcd and lcm",
            "Number of divisors from the prime factorization",
            "Sum of divisors function",
            "Legendre's formula for the exponent of a prime in n!",
            "p-adic valuation",
            "Lifting the exponent lemma",
            "Infinitude of primes",
            "Divisibility rules for 3, 9 and 11",
        ],
        "modular arithmetic": [
            "Modular arithmetic and congruences",
            "Fermat's little theorem",
            "Euler's theorem and Euler's totient function",
            "Chinese remainder theorem",
            "Wilson's theorem",
            "Multiplicative order of an integer modulo n",
            "Primitive roots modulo a prime",
            "Quadratic residues and the Legendre symbol",
            "Modular inverses",
            "Periodicity of powers modulo n",
            "Last digits via arithmetic modulo powers of 10",
        ],
        "diophantine equations": [
            "Linear Diophantine equations",
            "Pell's equation",
            "Parametrization of Pythagorean triples",
            "Factoring with Simon's favorite factoring trick",
            "Difference of squares factorization",
            "Parity arguments",
            "Infinite descent",
            "Sophie Germain identity",
            "Vieta jumping",
            "Representation of integers in base b",
            "Digit sums and casting out nines",
            "Sums of two squares and primes congruent to 1 mod 4",
        ],
    },
    "combinatorics": {
        "counting": [
            "Permutations and combinations",
            "Binomial coefficients and Pascal's identity",
            "Binomial theorem",
            "Stars and bars",
            "Inclusion-exclusion principle",
            "Complementary counting",
            "Fundamental counting principle",
            "Counting with bijections",
            "Multinomial coefficients",
            "Catalan numbers",
            "Derangements",
            "Vandermonde's identity",
            "Hockey-stick identity",
            "Burnside's lemma for counting up to symmetry",
            "Generating functions",
            "Recursive counting of sequences",
            "Lattice path counting",
        ],
        "discrete structures": [
            "Pigeonhole principle",
            "Invariants and monovariants",
            "Extremal principle",
            "Double counting",
            "Handshake lemma for vertex degrees",
            "A tree on n vertices has n - 1 edges",
            "Euler's formula for planar graphs",
            "Coloring arguments",
            "Bipartite graphs",
            "Ramsey number R(3,3) = 6",
            "Hall's marriage theorem",
            "Eulerian paths and circuits",
            "Winning and losing positions in combinatorial games",
            "Parity of permutations",
        ],
    },
    "geometry": {
        "triangles": [
            "Pythagorean theorem",
            "Similar triangles",
            "Law of cosines",
            "Law of sines",
            "Heron's formula",
            "Triangle area as one half ab sin C",
            "Angle bisector theorem",
            "Stewart's theorem",
            "Ceva's theorem",
            "Menelaus' theorem",
            "Incircle, incenter and the inradius formula r = A/s",
            "Circumradius formula R = abc/(4K)",
            "The centroid divides each median in ratio 2:1",
            "Orthocenter and altitudes of a triangle",
            "Euler line of a triangle",
            "Triangle inequality",
            "Area ratios of triangles sharing an altitude",
            "Mass points",
        ],
        "circles": [
            "Inscribed angle theorem",
            "Power of a point theorem",
            "Cyclic quadrilaterals have supplementary opposite angles",
            "Ptolemy's theorem",
            "A tangent to a circle is perpendicular to the radius",
            "Equal tangent segments from an external point",
            "Radical axis of two circles",
            "Arc length and sector area",
            "Nine-point circle",
            "Spiral similarity",
            "Homothety",
            "Inversion in a circle",
        ],
        "coordinates and solids": [
            "Distance and midpoint formulas",
            "Equation of a circle in the coordinate plane",
            "Shoelace formula for polygon area",
            "Pick's theorem",
            "Vectors and the dot product",
            "Slopes and equations of lines",
            "Distance from a point to a line",
            "Conic sections: ellipses and parabolas",
            "Volume of pyramids and cones",
            "Volume and surface area of a sphere",
            "Cross sections of solids",
            "Sum of interior angles of a polygon",
            "Symmetries of regular polygons",
            "Reflections to find shortest paths",
            "Rotations and isometries of the plane",
        ],
    },
    "probability": {
        "probability": [
            "Classical probability as favorable over total outcomes",
            "Conditional probability",
            "Independence of events",
            "Linearity of expectation",
            "Expected value of a discrete random variable",
            "Indicator random variables",
            "Geometric probability",
            "Bayes' theorem",
            "Binomial distribution",
            "Geometric distribution and expected waiting time",
            "States and recursion for expected values",
            "Symmetry arguments in probability",
            "Random walks and the gambler's ruin",
            "Variance of a random variable",
        ],
    },
    "trigonometry": {
        "trigonometry": [
            "Pythagorean identity sin^2 x + cos^2 x = 1",
            "Angle addition formulas",
            "Double-angle formulas",
            "Product-to-sum formulas",
            "Unit circle definitions of sine and cosine",
            "Periodicity of trigonometric functions",
            "Trigonometric substitution",
            "Sum of sines of angles in arithmetic progression",
            "Inverse trigonometric functions",
            "Graphs of sine and cosine functions",
        ],
    },
}

# Topic pairs that meet in real problems (besides topics of the same area).
RELATED: dict[str, list[str]] = {
    "polynomials": ["complex numbers", "inequalities", "divisibility", "sequences"],
    "inequalities": ["triangles", "sequences", "functions"],
    "functions": ["sequences", "inequalities", "modular arithmetic"],
    "sequences": ["counting", "modular arithmetic", "divisibility"],
    "complex numbers": ["trigonometry", "polynomials", "coordinates and solids", "counting"],
    "divisibility": ["diophantine equations", "counting", "sequences"],
    "modular arithmetic": ["diophantine equations", "sequences", "counting"],
    "diophantine equations": ["polynomials", "triangles"],
    "counting": ["probability", "discrete structures", "sequences"],
    "discrete structures": ["counting", "modular arithmetic", "coordinates and solids"],
    "triangles": ["trigonometry", "circles", "coordinates and solids"],
    "circles": ["trigonometry", "triangles", "coordinates and solids"],
    "coordinates and solids": ["triangles", "complex numbers", "probability"],
    "probability": ["counting", "sequences", "coordinates and solids"],
    "trigonometry": ["triangles", "complex numbers", "polynomials"],
}
LIST_SIZE = 5
VARIANT_RATE = 0.04


def _topics() -> dict[str, tuple[str, list[str]]]:
    return {t: (area, c) for area, topics in VOCABULARY.items() for t, c in topics.items()}


def _draw(rng: random.Random, concepts: list[str], exclude: set[str], k: int) -> list[str]:
    """k distinct concepts, earlier (more common) ones likelier: weight 1 / (rank + 2)^0.8."""
    picked: list[str] = []
    pool = [c for c in concepts if c not in exclude]
    while len(picked) < k and pool:
        weights = [1.0 / (concepts.index(c) + 2) ** 0.8 for c in pool]
        choice = rng.choices(pool, weights=weights)[0]
        picked.append(choice)
        pool.remove(choice)
    return picked


def _variant(rng: random.Random, concept: str, used: set[str]) -> str:
    """A variant spelling now and then, never on first use (the pool shows the first)."""
    first_use = concept not in used
    used.add(concept)
    if first_use or rng.random() >= VARIANT_RATE:
        return concept
    return concept[0].lower() + concept[1:] if rng.random() < 0.5 else concept + "."


def make_lists(n_lists: int, seed: int) -> list[dict]:
    """`n_lists` distinct concept lists as JSON-ready rows."""
    rng = random.Random(seed)
    topics = _topics()
    names = sorted(topics)
    rows: list[dict] = []
    seen: set[frozenset[str]] = set()
    used: set[str] = set()
    while len(rows) < n_lists:
        main = rng.choice(names)
        area, concepts = topics[main]
        chosen = _draw(rng, concepts, set(), rng.choice([3, 3, 4, 4, 5]))
        while len(chosen) < LIST_SIZE:
            if rng.random() < 0.6:
                other = rng.choice(RELATED[main])
            else:
                same_area = [t for t in names if topics[t][0] == area and t != main]
                other = rng.choice(same_area or RELATED[main])
            chosen += _draw(rng, topics[other][1], set(chosen), 1)
        if frozenset(chosen) in seen:
            continue
        seen.add(frozenset(chosen))
        level = rng.choice(LEVELS)
        texts = [_variant(rng, c, used) for c in chosen]
        rows.append(
            {"id": make_id("concept_list", level, texts), "level": level, "concepts": texts}
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2025)
    default_out = Path(__file__).resolve().parents[1] / "promptcot_ray/data/concept_lists.jsonl"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    rows = make_lists(args.lists, args.seed)
    with args.out.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    vocabulary = sum(len(c) for topics in VOCABULARY.values() for c in topics.values())
    print(f"wrote {len(rows)} lists over a {vocabulary}-concept vocabulary to {args.out}")


if __name__ == "__main__":
    main()
