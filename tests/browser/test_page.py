"""The try-it page in headless chromium: what a person does and sees."""

import hashlib
import json
import time

import pytest

from tests.browser.conftest import release, screenshot
from tests.conftest import PHOTOS

pytestmark = [pytest.mark.integration, pytest.mark.browser]
LOADED = "img => img.complete && img.naturalWidth > 0"


def _job_id(page) -> str:  # type: ignore[no-untyped-def]
    page.wait_for_function("() => document.body.dataset.job")
    return str(page.evaluate("() => document.body.dataset.job"))


def test_upload_pick_two_paintings_watch_preview_then_final_and_compare(page, stack) -> None:
    page.set_input_files("#photo", str(PHOTOS / "grace_hopper.png"))
    assert page.locator("#photo-preview").evaluate(LOADED)
    page.get_by_role("button", name="starry", exact=True).click()
    waves = page.get_by_role("button", name="waves", exact=True)
    waves.focus()
    page.keyboard.press("Enter")  # the keyboard alone picks a painting too
    assert waves.get_attribute("aria-pressed") == "true"
    page.get_by_role("button", name="Paint it").click()
    job_id = _job_id(page)
    cards = page.locator(".card")
    # The worker holds the job after its first output's optimization: the
    # preview (or an intermediate) is on screen, the final result is not.
    page.wait_for_function("() => [...document.querySelectorAll('.card .after')].some("
                           "i => i.dataset.shown === 'preview' && i.naturalWidth > 0)")  # fmt: skip
    marks = page.evaluate("() => window.backdropMarks")
    assert cards.count() == 2
    screenshot(page, "page-mid-job-1280")
    release(stack, job_id)
    page.wait_for_function("() => [...document.querySelectorAll('.card')].every(c => "
                           "c.dataset.stage === 'final' && c.querySelector('.after').dataset.shown "
                           "=== 'final' && c.querySelector('.after').naturalWidth > 0)",
                           timeout=120_000)  # fmt: skip
    page.wait_for_function("() => document.getElementById('job-state').innerText === 'Done'")
    slider = cards.first.locator(".slider")
    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowLeft")  # the before/after slider moves by keyboard
    clip = cards.first.locator(".after").evaluate("img => img.style.clipPath")
    assert clip == "inset(0px 0px 0px 47%)", clip
    assert cards.first.locator(".download").get_attribute("href").startswith("http")
    screenshot(page, "page-done-1280")
    page.set_viewport_size({"width": 375, "height": 800})
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a 375 px phone"
    screenshot(page, "page-done-375")
    # A second picture with the workers warm: what a person sees after the first.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.locator("#strength").fill("0.5")
    page.get_by_role("button", name="Paint it").click()
    page.wait_for_function("() => document.body.dataset.job !== " + json.dumps(job_id))
    page.wait_for_function("() => window.backdropMarks.preview !== undefined")
    again = page.evaluate("() => window.backdropMarks")
    release(stack, _job_id(page))
    times = {"first_paint_to_preview_ms": round(marks["preview"] - marks["go"]),
             "warm_paint_to_preview_ms": round(again["preview"] - again["go"])}  # fmt: skip
    print("\npage:", json.dumps(times))


def test_a_text_file_named_jpg_is_refused_in_words(page, stack, tmp_path) -> None:
    text = tmp_path / "holiday.jpg"
    text.write_text("this is not a photo at all\n" * 20)
    page.set_input_files("#photo", str(text))  # the browser calls it image/jpeg by its name
    page.get_by_role("button", name="starry", exact=True).click()
    page.get_by_role("button", name="Paint it").click()
    message = page.locator("#message")
    message.wait_for(state="visible")
    assert "not a JPEG, PNG, WebP or BMP image" in message.inner_text()
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    page.set_input_files("#photo", str(notes))  # refused before any upload
    assert "notes.txt" in message.inner_text() and "not a JPEG" in message.inner_text()


def test_cancel_a_running_job(page, stack) -> None:
    page.set_input_files("#photo", str(PHOTOS / "cat_720p.jpg"))
    page.get_by_role("button", name="waves", exact=True).click()
    page.get_by_role("button", name="Paint it").click()
    job_id = _job_id(page)
    page.wait_for_function("() => document.querySelector('.card progress')")
    try:
        page.get_by_role("button", name="Cancel").click()
        page.wait_for_function("() => document.getElementById('job-state').innerText"
                               ".startsWith('Cancelled')")  # fmt: skip
        assert page.locator(".card").first.get_attribute("data-state") == "CANCELLED"
        assert page.locator("#cancel").is_hidden()
    finally:
        release(stack, job_id)
        time.sleep(0.5)


def test_a_link_with_another_key_asks_before_replacing_the_kept_one(page, stack) -> None:
    """A link decides whose account gets the photos: someone else's link must
    not silently swap its key in for this browser's (the page kept it)."""
    kept = "() => localStorage.getItem('backdrop-key')"
    assert page.evaluate(kept) == stack["key"]
    asked: list[str] = []

    def answer(accept: bool) -> None:  # the next dialog only
        page.once("dialog", lambda d: (asked.append(d.message),
                                       d.accept() if accept else d.dismiss()))  # fmt: skip

    answer(False)
    page.goto(f"{stack['url']}/?again=1#key=bdk_someone_elses_key")
    page.wait_for_function("() => document.readyState === 'complete'")
    assert asked and "different API key" in asked[0]
    assert page.evaluate(kept) == stack["key"], "dismissed: the kept key stays"
    answer(True)
    page.goto(f"{stack['url']}/?again=2#key=bdk_someone_elses_key")
    page.wait_for_function("() => document.readyState === 'complete'")
    assert len(asked) == 2 and page.evaluate(kept) == "bdk_someone_elses_key"
    asked.clear()
    page.goto(f"{stack['url']}/?again=3#key=bdk_someone_elses_key")  # the same key: nothing to ask
    page.wait_for_function("() => document.readyState === 'complete'")
    assert asked == []


def _until(page, check, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Let the page run (its requests are seen) until check() holds."""
    for _ in range(int(seconds * 10)):
        if check():
            return
        page.wait_for_timeout(100)
    raise AssertionError("the page never got there")


def _upload_key(photo: str) -> str:
    """The gateway's key for a photo's bytes (uploads are content-addressed)."""
    return f"uploads/{hashlib.sha256((PHOTOS / photo).read_bytes()).hexdigest()}"


def _paint(page, photo: str, painting: str = "starry") -> None:  # type: ignore[no-untyped-def]
    page.set_input_files("#photo", str(PHOTOS / photo))
    page.get_by_role("button", name=painting, exact=True).click()
    page.get_by_role("button", name="Paint it").click()


def test_after_paint_again_nothing_of_the_job_before_is_asked_for(page, stack) -> None:
    """Behind a proxy that cuts idle event streams the page polls; once another
    job is painted, the first job's statuses (its picture, its Download link)
    must never be drawn into the new job's cards: the page stops asking."""

    def cut(route) -> None:  # type: ignore[no-untyped-def]
        route.fulfill(status=200, content_type="text/event-stream", body="")

    page.route("**/v1/jobs/*/events", cut)  # every stream ends at once, as a cut one does
    polls: list[str] = []

    def seen(r) -> None:  # type: ignore[no-untyped-def]
        if r.method == "GET" and "/v1/jobs/" in r.url and "/events" not in r.url:
            polls.append(r.url.rsplit("/", 1)[-1])

    page.on("request", seen)
    jobs = []
    try:
        _paint(page, "grace_hopper.png")
        jobs.append(_job_id(page))
        _until(page, lambda: jobs[0] in polls)
        page.locator("#strength").fill("0.5")
        page.get_by_role("button", name="Paint it").click()
        page.wait_for_function("() => document.body.dataset.job !== " + json.dumps(jobs[0]))
        jobs.append(_job_id(page))
        since = len(polls)
        _until(page, lambda: jobs[1] in polls[since:])
        page.wait_for_timeout(4500)  # two more poll periods
        assert jobs[1] in polls[since:], "the new job is polled"
        assert jobs[0] not in polls[since:], f"the old job is still polled: {polls[since:]}"
    finally:
        for job_id in jobs:
            release(stack, job_id)


def test_a_photo_chosen_while_another_uploads_is_not_painted_as_it(page, stack) -> None:
    """Paint pressed, then another photo chosen before the first upload ends:
    the first photo's key must not be kept for the second (the job would paint
    the first while the before/after showed the second)."""
    held: list = []

    def hold_the_first(route) -> None:  # type: ignore[no-untyped-def]
        if held:
            route.continue_()
        else:
            held.append(route)  # the first upload waits for the test

    page.route("**/v1/photos", hold_the_first)
    posted: list[dict] = []
    page.on("request", lambda r: posted.append(json.loads(r.post_data or "{}"))
            if r.method == "POST" and r.url.endswith("/v1/jobs") else None)  # fmt: skip
    _paint(page, "grace_hopper.png")
    _until(page, lambda: bool(held))
    page.set_input_files("#photo", str(PHOTOS / "cat_720p.jpg"))
    answer = held[0].fetch()  # the first upload reaches the gateway only now
    assert answer.json()["key"] == _upload_key("grace_hopper.png")
    held[0].fulfill(response=answer)
    message = page.locator("#message")
    _until(page, lambda: bool(posted) or message.is_visible())
    assert posted == [], "the first photo was painted for the second"
    assert "another photo" in message.inner_text()
    page.get_by_role("button", name="Paint it").click()
    job_id = _job_id(page)
    try:
        assert [p["photo_key"] for p in posted] == [_upload_key("cat_720p.jpg")]
    finally:
        release(stack, job_id)
