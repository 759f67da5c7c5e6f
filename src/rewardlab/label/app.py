"""The labelling web app: FastAPI pages for a comparison (two completions of one prompt: left,
right, tie or skip, keyboard shortcuts, undo, a progress count) and a rating (one output, 1-7),
and the JSON API they and the simulated rater use (docs/LABELLING.md).

Every API call carries its labeller's token in the ``X-Token`` header (never a cookie or the URL);
the admin's token also creates labellers, builds queues and exports. Requests whose ``Host`` is not
the bound address or that another site's page sent are refused (`rewardlab.common.http`). Errors
are JSON ``{"error": ...}`` with the right 4xx, and nothing is written on one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from rewardlab.common.http import error as _error
from rewardlab.common.http import errors_as_json, guard, loads, read_body
from rewardlab.errors import RewardLabError
from rewardlab.label.store import SCHEMA_VERSION, Store

MAX_BODY = 64 << 10  # bytes; labels are small


def comparisons_from_run(run_dir: str | Path, pairs: int, seed: int = 0) -> list[dict]:
    """`pairs` comparisons from a run's preference pool: two different completions of one
    prompt (disjoint pairs of each prompt's samples, as for gold labels), prompts and pairs
    drawn with `seed`; gold kept for agreement, shown to no one."""
    pool_file = Path(run_dir) / "stages" / "pool-preferences" / "pool.parquet"
    if not pool_file.is_file():
        raise RewardLabError(f"{run_dir} has no preference pool ({pool_file}) to compare from")
    pool = pd.read_parquet(pool_file)
    rng = np.random.default_rng(seed)
    out = []
    for _, g in pool.groupby("prompt_id", sort=True):
        idx = rng.permutation(len(g))
        for i, j in zip(idx[0::2], idx[1::2], strict=False):
            a, b = g.iloc[i], g.iloc[j]
            if a.completion != b.completion:
                out.append(dict(prompt=a.prompt, a=a.completion, b=b.completion,
                                gold_a=float(a.gold), gold_b=float(b.gold)))  # fmt: skip
    order = rng.permutation(len(out))[:pairs]
    return [out[k] for k in order]


async def _json_body(request: Request) -> dict:
    """The request's JSON object, or ValueError/OverflowError saying what is wrong (a body sent
    too slowly is a ValueError too: answered 400, nothing written)."""
    try:
        data = loads(await read_body(request, MAX_BODY) or b"null")
    except TimeoutError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def make_app(
    store: Store, run_dir: str | Path | None = None, bind: str = "127.0.0.1", hosts=()
) -> FastAPI:
    """The app over `store`; queues are built from `run_dir`'s pool. Requests must name `bind`
    (or one of `hosts`) as their Host."""
    app = FastAPI(title="rewardlab labelling", docs_url=None, redoc_url=None, openapi_url=None)
    guard(app, bind, hosts)

    def caller(request: Request, admin: bool = False):
        token = request.headers.get("x-token")
        if not token:
            return None, _error(401, "no X-Token header: every call carries its labeller's token")
        who = store.who(token)
        if who is None:
            return None, _error(401, "unknown token")
        if admin and not who[2]:
            return None, _error(403, f"labeller {who[1]!r} is not the admin")
        return who, None

    _pages(app)

    @app.get("/api/me")
    def me(request: Request):
        who, err = caller(request)
        if err:
            return err
        return {"name": who[1], "admin": who[2], "progress": store.progress(who[0])}

    @app.get("/api/next")
    def next_item(request: Request, kind: str = "comparison"):
        who, err = caller(request)
        if err:
            return err
        if kind not in ("comparison", "rating"):
            return _error(400, "kind is comparison or rating")
        return {"item": store.next_item(who[0], kind), "progress": store.progress(who[0])}

    @app.post("/api/labels")
    async def add_label(request: Request):
        who, err = caller(request)
        if err:
            return err
        try:
            data = await _json_body(request)
            unknown = set(data) - {"item", "choice", "score"}
            if (
                unknown
                or not isinstance(data.get("item"), int)
                or isinstance(data.get("item"), bool)
            ):
                raise ValueError(
                    "a label is {'item': id, 'choice': a|b|tie|skip} or {'item': id, 'score': 1-7}"
                )
            res = store.add_label(who[0], data["item"], data.get("choice"), data.get("score"))
        except OverflowError as exc:
            return _error(413, str(exc))
        except LookupError as exc:
            return _error(404, str(exc))
        except PermissionError as exc:
            return _error(403, str(exc))
        except ValueError as exc:
            return _error(409 if "labelled already" in str(exc) else 400, str(exc))
        return {**res, "progress": store.progress(who[0])}

    @app.post("/api/undo")
    def undo(request: Request):
        who, err = caller(request)
        if err:
            return err
        return {"item": store.undo(who[0]), "progress": store.progress(who[0])}

    _admin_routes(app, store, caller, run_dir)

    errors_as_json(app)
    return app


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rewardlab labelling</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
.prompt { background: #f3f3f3; padding: .8rem; border-radius: .4rem; font-family: monospace; }
.pair { display: flex; gap: 1rem; margin: 1rem 0; }
.pair div, .one { flex: 1; border: 1px solid #bbb; border-radius: .4rem; padding: .8rem;
  font-family: monospace; white-space: pre-wrap; min-height: 3rem; }
button { font-size: 1rem; margin: .2rem; padding: .4rem .8rem; }
#progress { float: right; color: #555; } #msg { color: #a00; min-height: 1.4rem; }
kbd { border: 1px solid #999; border-radius: 3px; padding: 0 .3rem; font-size: .8rem; }
</style></head><body>
<h1>rewardlab <span id="title"></span><span id="progress"></span></h1>
<div id="login"><label>Your token <input id="token" type="password" size="50"></label>
<button id="go">Start</button></div>
<div id="work" hidden>
<p class="prompt" id="prompt"></p>
<div id="comparison" hidden><div class="pair"><div id="a"></div><div id="b"></div></div>
<button id="left">Left better <kbd>1</kbd></button><button id="right">Right better <kbd>2</kbd></button>
<button id="tie">Tie <kbd>3</kbd></button><button id="skip">Skip <kbd>s</kbd></button></div>
<div id="rating" hidden><div class="one" id="one"></div><p id="scores"></p></div>
<button id="undo">Undo last <kbd>u</kbd></button></div>
<p id="msg"></p><p id="done" hidden>Nothing left to label. Thank you.</p>
<script>
const KIND = "{{KIND}}";
let token = sessionStorage.getItem("rewardlab-token") || "", item = null, busy = false;
document.getElementById("title").textContent = KIND === "comparison" ? "comparisons" : "ratings";
async function call(method, path, body) {
  const r = await fetch(path, {method, headers: {"X-Token": token, "Content-Type": "application/json"},
                               body: body ? JSON.stringify(body) : undefined});
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || r.status);
  return data;
}
function show(data) {
  const p = data.progress[KIND] || {done: 0, total: 0};
  document.getElementById("progress").textContent = p.done + " / " + p.total;
  item = data.item;
  document.getElementById("work").hidden = !item;
  document.getElementById("done").hidden = !!item;
  if (!item) return;
  document.getElementById("prompt").textContent = item.prompt;
  document.getElementById(KIND).hidden = false;
  if (KIND === "comparison") {
    document.getElementById("a").textContent = item.a;
    document.getElementById("b").textContent = item.b;
  } else document.getElementById("one").textContent = item.a;
}
async function next() { show(await call("GET", "/api/next?kind=" + KIND)); }
async function send(label) {
  if (!item || busy) return;
  busy = true;
  try { await call("POST", "/api/labels", {item: item.id, ...label}); await next();
        document.getElementById("msg").textContent = ""; }
  catch (e) { document.getElementById("msg").textContent = e.message; }
  finally { busy = false; }
}
async function undo() {
  try { await call("POST", "/api/undo"); await next(); }
  catch (e) { document.getElementById("msg").textContent = e.message; }
}
async function start() {
  token = document.getElementById("token").value.trim() || token;
  try { await call("GET", "/api/me"); sessionStorage.setItem("rewardlab-token", token);
        document.getElementById("login").hidden = true; await next(); }
  catch (e) { document.getElementById("msg").textContent = e.message; }
}
const scores = document.getElementById("scores");
for (let s = 1; s <= 7; s++) {
  const b = document.createElement("button"); b.id = "score-" + s;
  b.innerHTML = s + " <kbd>" + s + "</kbd>"; b.onclick = () => send({score: s}); scores.appendChild(b);
}
document.getElementById("go").onclick = start;
document.getElementById("left").onclick = () => send({choice: "a"});
document.getElementById("right").onclick = () => send({choice: "b"});
document.getElementById("tie").onclick = () => send({choice: "tie"});
document.getElementById("skip").onclick = () => send({choice: "skip"});
document.getElementById("undo").onclick = undo;
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT") { if (e.key === "Enter") start(); return; }
  if (e.key === "u") return undo();
  if (KIND === "comparison") {
    const c = {"1": "a", "2": "b", "3": "tie", "s": "skip"}[e.key];
    if (c) send({choice: c});
  } else if (e.key >= "1" && e.key <= "7") send({score: Number(e.key)});
});
if (token) start();
</script></body></html>
"""


def _admin_routes(app: FastAPI, store: Store, caller, run_dir: str | Path | None) -> None:
    """The admin's endpoints: add a labeller, queue comparisons from `run_dir`'s pool, export the
    labels (`caller(request, admin=True)` checks the token)."""

    @app.post("/api/admin/labellers")
    async def add_labeller(request: Request):
        who, err = caller(request, admin=True)
        if err:
            return err
        try:
            data = await _json_body(request)
            token = store.add_labeller(str(data.get("name", "")))
        except OverflowError as exc:
            return _error(413, str(exc))
        except (ValueError, RewardLabError) as exc:
            return _error(409 if "exists" in str(exc) else 400, str(exc))
        return {"name": data["name"], "token": token}

    @app.post("/api/admin/queue")
    async def queue(request: Request):
        who, err = caller(request, admin=True)
        if err:
            return err
        try:
            data = await _json_body(request)
            if run_dir is None:
                raise RewardLabError("the app was started without a run folder to queue from")
            n = data.get("pairs")
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10000:
                raise ValueError("'pairs' must be an integer from 1 to 10000")
            seed = data.get("seed", 0)
            if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
                raise ValueError("'seed', when given, must be a non-negative integer")
            rows = comparisons_from_run(run_dir, n, seed)
            ids = store.add_items(str(data.get("labeller", "")), "comparison", rows, str(run_dir))
        except OverflowError as exc:
            return _error(413, str(exc))
        except (ValueError, RewardLabError) as exc:
            return _error(404 if "no labeller" in str(exc) else 400, str(exc))
        return {"queued": len(ids)}

    @app.get("/api/admin/export")
    def export(request: Request, format: str = "trl"):
        who, err = caller(request, admin=True)
        if err:
            return err
        from rewardlab.label.formats import label_studio, trl_pairs

        if format == "trl":
            return {"rows": trl_pairs(store.labels())}
        if format == "label-studio":
            return {"tasks": label_studio(store.labels())}
        return _error(400, "format is trl or label-studio")


def _pages(app: FastAPI) -> None:
    """The health check and the two labelling pages (comparisons, ratings)."""

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "schema_version": SCHEMA_VERSION}

    @app.get("/", response_class=HTMLResponse)
    def compare_page() -> str:
        return PAGE.replace("{{KIND}}", "comparison")

    @app.get("/rate", response_class=HTMLResponse)
    def rate_page() -> str:
        return PAGE.replace("{{KIND}}", "rating")
