"""Old import paths kept after renames and moves (users may have them in scripts)."""


def test_toeplitz_normal_is_still_importable_from_grasp():
    from dainr.methods.grasp import ToeplitzNormal as old
    from dainr.physics.normal import ToeplitzNormal

    assert old is ToeplitzNormal


def test_frame_times_of_render_is_render_times():
    from dainr.render import frame_times, render_times

    assert frame_times is render_times
