# SPDX-License-Identifier: MIT
# poisson.py: the ARCHER report's kind of job (tests/bench/archer.sh): a
# Poisson problem with legacy DOLFIN, -div(grad u) = 1 on the unit square,
# u = 0 on the boundary, on an N x N mesh of triangles (argv[1]), P1
# elements, conjugate gradients with a Jacobi preconditioner.  Rank 0
# prints "compute SECONDS": mesh, assembly and solve, the slowest rank's.
# (Constant data and assemble_system: with a JIT-compiled Expression and
# solve(a == L), mpiexec -n 2 hung here.)
import sys
import time

from dolfin import *

comm = MPI.comm_world
n = int(sys.argv[1])
MPI.barrier(comm)
t0 = time.time()
mesh = UnitSquareMesh(comm, n, n)
V = FunctionSpace(mesh, "P", 1)
u, v = TrialFunction(V), TestFunction(V)
a = inner(grad(u), grad(v)) * dx
L = Constant(1.0) * v * dx
bc = DirichletBC(V, Constant(0.0), "on_boundary")
A, b = assemble_system(a, L, bc)
x = Function(V)
solver = PETScKrylovSolver("cg", "jacobi")
solver.parameters["relative_tolerance"] = 1e-8
solver.solve(A, x.vector(), b)
t = MPI.max(comm, time.time() - t0)
if MPI.rank(comm) == 0:
    print("compute %.3f" % t)
