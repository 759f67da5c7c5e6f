"""LLM-written rewards against a local server that speaks the OpenAI chat-completions protocol
and answers with fixed code: good, broken, hostile, and code wrapped in prose and fences."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rewardlab.errors import RewardLabError
from rewardlab.sandbox import check_available
from rewardlab.tasks import load_task
from rewardlab.write_reward import HttpChat, extract_code, first_prompt, write_rewards

try:
    check_available()
except RewardLabError as exc:  # pragma: no cover
    pytest.skip(f"no sandbox here: {exc}", allow_module_level=True)

GOOD = "def reward(prompts, completions, **kw):\n    return [float(len(set(c.split()))) for c in completions]\n"
BROKEN = "def reward(prompts, completions, **kw):\n    return [1.0]\n"  # wrong length
HOSTILE = "def reward(prompts, completions, **kw):\n    open('/etc/passwd').read()\n    return [0.0] * len(completions)\n"
PROSE = f"Here is a reward function.\n\n```python\n{GOOD}```\n\nIt counts distinct words."


class Server:
    """Answers the k-th request of each conversation from a script, and records the requests."""

    def __init__(self, script):
        self.script, self.requests = script, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body))
                turn = sum(m["role"] == "assistant" for m in body["messages"])
                user0 = body["messages"][1]["content"]
                text = outer.script(len(outer.requests) - 1, turn, user0)
                data = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": text}}]}
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data.encode())

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()


def test_candidates_are_validated_in_the_sandbox_and_fixed_with_feedback(tmp_path):
    # candidate 0: good at once; 1: broken, then good; 2: hostile every time; 3: prose + fence
    plans = {0: [GOOD], 1: [BROKEN, GOOD], 2: [HOSTILE, HOSTILE], 3: [PROSE]}
    calls = {"n": 0, "conv": -1}

    def script(i, turn, user0):
        if turn == 0:
            calls["conv"] += 1
        return plans[calls["conv"]][min(turn, len(plans[calls["conv"]]) - 1)]

    server = Server(script)
    try:
        task = load_task("topics")
        summary = write_rewards(task, HttpChat(server.url), tmp_path, candidates=4, rounds=2)
    finally:
        server.close()
    passed = {c["candidate"]: (c["passed"], c["rounds"]) for c in summary["candidates"]}
    assert passed == {0: (True, 1), 1: (True, 2), 2: (False, 2), 3: (True, 1)}
    assert (tmp_path / "candidate-0.py").read_text() == GOOD
    assert (tmp_path / "candidate-3.py").read_text() == GOOD  # the fenced code, not the prose
    assert not (tmp_path / "candidate-2.py").exists()  # the hostile program is not kept
    conv1 = json.loads((tmp_path / "candidate-1.json").read_text())
    feedback = conv1["messages"][3]["content"]
    assert "returned 1 scores for 64 samples" in feedback  # the error went back to the LLM
    conv2 = json.loads((tmp_path / "candidate-2.json").read_text())
    assert "Permission denied" in conv2["rounds"][0]["error"]
    path, body = server.requests[0]
    assert path == "/v1/chat/completions" and body["messages"][0]["role"] == "system"
    assert task.description in body["messages"][1]["content"]  # asked from the description
    assert summary["oracle_selected"] is None  # gold was never looked at


OVERFLOW = "def reward(prompts, completions, **kw):\n    return [10**400] * len(completions)\n"
FORGER = (
    "import os, sys\ndef reward(prompts, completions, **kw):\n"
    "    os.write(int(sys.argv[1]), b'[' * 100000)\n    os._exit(0)\n"
)
LOUD = (
    "def reward(prompts, completions, **kw):\n    raise ValueError('\\x1b[2J' + 'x' * 8_000_000)\n"
)


def test_every_way_a_candidate_fails_goes_back_to_the_llm_bounded(tmp_path):
    """Overflowing scores, a forged answer and an 8 MB error with terminal escapes are each
    fed back (cut, escaped) and the next round is asked for, instead of crashing the command."""
    plans = {0: [OVERFLOW, GOOD], 1: [FORGER, GOOD], 2: [LOUD, GOOD]}
    conv = {"k": -1}

    def script(i, turn, user0):
        conv["k"] += turn == 0
        return plans[conv["k"]][turn]

    server = Server(script)
    try:
        summary = write_rewards(load_task("topics"), HttpChat(server.url), tmp_path,
                                candidates=3, rounds=2)  # fmt: skip
    finally:
        server.close()
    assert [(c["passed"], c["rounds"]) for c in summary["candidates"]] == [(True, 2)] * 3
    errors = [json.loads((tmp_path / f"candidate-{k}.json").read_text())["rounds"][0]["error"]
              for k in range(3)]  # fmt: skip
    assert "non-finite or non-numeric score for sample 0" in errors[0]
    assert "answered outside the protocol" in errors[1]
    assert "\\x1b[2J" in errors[2] and "\x1b" not in errors[2] and len(errors[2]) < 3000
    fed = [
        m["content"] for _, body in server.requests for m in body["messages"] if m["role"] == "user"
    ]
    assert max(len(m) for m in fed) < 5000  # what the LLM was sent is bounded too


def test_oracle_selection_is_named(tmp_path):
    server = Server(lambda i, turn, user0: GOOD)
    try:
        summary = write_rewards(load_task("topics"), HttpChat(server.url), tmp_path,
                                candidates=1, rounds=1, oracle=True)  # fmt: skip
    finally:
        server.close()
    assert summary["oracle_selected"] == "candidate-0.py"
    assert -1 <= summary["candidates"][0]["oracle_spearman"] <= 1


def test_code_extraction_and_bad_endpoints():
    assert extract_code(PROSE) == GOOD
    assert extract_code(GOOD) == GOOD
    assert extract_code("I cannot help with that.") is None
    with pytest.raises(RewardLabError, match="could not be reached"):
        HttpChat("http://127.0.0.1:9/v1", timeout_s=2)([{"role": "user", "content": "x"}])
    server = Server(lambda *a: "x")
    server.httpd.RequestHandlerClass.do_POST = lambda self: (
        self.send_response(200),
        self.end_headers(),
        self.wfile.write(b'{"nope": 1}'),
    )
    try:
        with pytest.raises(RewardLabError, match="outside the chat-completions protocol"):
            HttpChat(server.url)([{"role": "user", "content": "x"}])
    finally:
        server.close()


def test_a_task_without_a_description_is_refused():
    class Bare:
        name = "bare"

    with pytest.raises(RewardLabError, match="has no description"):
        first_prompt(Bare())


def test_a_local_model_folder_is_a_backend(tmp_path):
    """A tiny local causal LM (built here: no hub) answers; its text holds no code, so the
    candidate fails with that reason, and nothing is written but the conversation."""
    from rewardlab.models import build_causal_lm
    from rewardlab.specs import ModelSpec
    from rewardlab.tasks import build_tokenizer
    from rewardlab.write_reward import LocalChat, chat_backend

    tok = build_tokenizer(["def", "reward", "return", ":"])
    model = build_causal_lm(ModelSpec(n_layer=1, n_embd=8, n_head=2), tok, positions=512)
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    chat = chat_backend(str(tmp_path / "m"))
    assert isinstance(chat, LocalChat)
    chat.max_new_tokens = 8
    summary = write_rewards(load_task("topics"), chat, tmp_path / "out", candidates=1, rounds=1)
    assert summary["candidates"][0]["passed"] is False
    log = json.loads((tmp_path / "out" / "candidate-0.json").read_text())
    assert (
        log["rounds"][0]["error"] in ("the answer holds no Python code block",)
        or "failed" in log["rounds"][0]["error"]
    )
    with pytest.raises(RewardLabError, match="give an http"):
        chat_backend(str(tmp_path / "nowhere"))
