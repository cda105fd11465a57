import types

import chatkeep


def test_public_api_is_exactly_what_all_lists():
    public = {
        name
        for name, value in vars(chatkeep).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } - {"annotations"}
    # Order is kept by ruff (RUF022); here: no duplicates, and nothing public unlisted.
    assert len(set(chatkeep.__all__)) == len(chatkeep.__all__)
    assert public == set(chatkeep.__all__) - {"__version__"}
