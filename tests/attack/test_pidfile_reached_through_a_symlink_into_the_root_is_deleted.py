"""`pidfile` inside `root` is a spec error, checked on the paths as written. A pid file whose
directory is a symlink into the root (or whose root is reached through a symlink) passes that
check, and a "stale" one was then deleted from Docker's data: a volume's `app.pid` left by a
process long gone is such a file. Issue 11: "`pidfile` inside
`root` ... is a spec error"; where it is silent, what a security reviewer expects: the rule
holds for the path the kernel resolves, not only for its spelling."""

from __future__ import annotations

from pathlib import Path

from tests.hostile_world import make_world


def test_a_pid_file_in_the_root_through_a_symlink_is_reported_and_left_alone(
    tmp_path: Path,
) -> None:
    inside = tmp_path / "docker" / "volumes" / "data"
    pidfile = tmp_path / "run-link" / "docker.pid"
    world = make_world(tmp_path, legacy=False, pidfile=str(pidfile))
    inside.mkdir(parents=True)
    (tmp_path / "run-link").symlink_to(inside)
    (inside / "docker.pid").write_text("4194303\n")  # a pid that is not running
    outcome = world.run()
    assert outcome.ok, outcome.error
    assert (inside / "docker.pid").read_text() == "4194303\n"
    (warning,) = [n.message for n in outcome.plan.notes if n.reconciler == "pidfile"]
    assert warning == (
        f"{pidfile} is inside root ({world.root}) through a symlink: what is under root is "
        "Docker's data; left alone"
    )
