import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_torch_globals():
    """The trainer sets process-wide torch state (threads, deterministic mode); keep other tests unaffected."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    rng = torch.get_rng_state()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    torch.set_rng_state(rng)
