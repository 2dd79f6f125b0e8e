"""The Gradio demo, served on 127.0.0.1 with the tiny random model and driven like a user would:
through `gradio_client` for every tab, and once through a headless Chromium (`browser` marker)."""

import contextlib
import shutil
import socket
import time

import numpy as np
import pytest
import soundfile

pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed")
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.conftest import noise_clip, speech_clip
from unispeech.api import load
from unispeech.interfaces.cli import main
from unispeech.interfaces.demo import MEL_ROW_HEIGHT, DemoSettings, launch, mel_picture, page_text
from unispeech.tasks.decoding import DecodingOptions
from unispeech.tasks.transcription import TranscriptionOptions

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # pandas 3 vs gradio's
SETTINGS = DemoSettings(queue_size=4, max_upload_mb=0.5, max_audio_seconds=5.0, max_text_chars=200)
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def speech(tiny_dir):
    return load(tiny_dir, adapters=None)


@pytest.fixture(scope="module")
def server(speech):
    """The demo's URL while it runs."""
    port = free_port()
    demo = launch(speech, SETTINGS, port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Good and bad uploads, by name."""
    folder = tmp_path_factory.mktemp("uploads")
    files = {
        "speech": (speech_clip(1.0, 16000, seed=1), 16000),
        "prompt": (noise_clip(1.0, 22050, seed=2), 22050),
        "silent": (np.zeros(16000, np.float32), 16000),
        "nan": (np.full(16000, np.nan, np.float32), 16000),
        "empty": (np.zeros(0, np.float32), 16000),
        "long": (noise_clip(6.0, 8000, seed=3), 8000),  # over max_audio_seconds, under max_upload_mb
        "big": (noise_clip(20.0, 16000, seed=4), 16000),  # over max_upload_mb
        "short": (noise_clip(0.005, 22050, seed=5), 22050),  # 110 samples
    }
    paths = {}
    for name, (audio, rate) in files.items():
        paths[name] = folder / f"{name}.wav"
        soundfile.write(paths[name], audio, rate, subtype="FLOAT" if name == "nan" else "PCM_16")
    paths["corrupt"] = folder / "corrupt.wav"
    paths["corrupt"].write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt not really a wav file")
    return paths


def test_transcribe_tab_returns_the_transcript_its_nbest_list_and_timing(speech, client, clips):
    text, table, timing = client.predict(handle_file(clips["speech"]), 3, api_name="/transcribe")
    options = TranscriptionOptions(decoding=DecodingOptions(beam_size=3, n_best=3))
    expected = speech.transcribe(str(clips["speech"]), options)
    assert text == expected.text
    assert table["headers"] == ["rank", "text", "score"]
    assert [row[:2] for row in table["data"]] == [[i + 1, h.text] for i, h in enumerate(expected.hypotheses)]
    assert len(table["data"]) == 3
    assert timing.startswith("1.00 s of audio transcribed in") and "no speech heard" not in timing


def test_a_recording_without_speech_transcribes_to_nothing(client, clips):
    text, table, timing = client.predict(handle_file(clips["silent"]), 1, api_name="/transcribe")
    assert text == "" and table["data"] == [] and timing.endswith("no speech heard")


def test_speak_tab_returns_speech_and_its_mel_spectrogram(speech, client, clips):
    from PIL import Image

    audio_path, picture_path, timing = client.predict(
        "hi", handle_file(clips["prompt"]), "the prompt says this", 2, 2.0, 1.0, 0, 0.5, api_name="/speak"
    )
    audio, rate = soundfile.read(audio_path, dtype="int16")
    assert rate == speech.sample_rate and audio.ndim == 1 and len(audio) > 0
    with Image.open(picture_path) as picture:
        assert picture.mode == "RGB"
        assert picture.size == (len(audio) // 256, 80 * MEL_ROW_HEIGHT)  # (frames, bins · rows) at hop 256
    assert "2 ODE steps" in timing


@pytest.mark.parametrize("with_audio", [False, True])
def test_correct_tab_takes_one_hypothesis_per_line(speech, client, clips, with_audio):
    audio = handle_file(clips["speech"]) if with_audio else None
    corrected, timing = client.predict("a b\n\n  a c  \n", audio, api_name="/correct")
    recording = str(clips["speech"]) if with_audio else None
    assert corrected == speech.correct(["a b", "a c"], recording)
    assert timing.startswith("2 hypotheses corrected")
    assert ("listening" in timing) == with_audio


@pytest.mark.parametrize(
    ("api_name", "inputs", "message"),
    [
        ("/transcribe", ["nan", 1], "NaN or infinite"),
        ("/transcribe", ["empty", 1], "empty"),
        ("/transcribe", ["corrupt", 1], "cannot read audio file corrupt.wav"),
        ("/transcribe", ["long", 1], "lasts 6.0 s, more than the 5 s allowed"),
        ("/transcribe", [None, 1], "no recording"),
        ("/speak", ["", "prompt", "", 2, 2.0, 1.0, 0, 1.0], "text is empty"),
        ("/speak", ["x" * 201, "prompt", "", 2, 2.0, 1.0, 0, 1.0], "201 characters, more than the 200"),
        ("/speak", ["hi", "silent", "", 2, 2.0, 1.0, 0, 1.0], "voice prompt is silent"),
        ("/speak", ["🎉🎉", "prompt", "a b", 2, 2.0, 1.0, 0, 1.0], "has no letter or digit"),
        ("/speak", ["hi", "short", "", 2, 2.0, 1.0, 0, 1.0], "could not be transcribed"),
        ("/speak", ["hi", "short", "a b", 2, 2.0, 1.0, 0, 1.0], "too short for a mel frame"),
        ("/speak", ["hi", "prompt", "", 0, 2.0, 1.0, 0, 1.0], "less than minimum value 1"),
        ("/correct", ["  \n ", None], "N-best list is empty"),
        ("/correct", ["\n".join("abcdefghijklmnopqrstu"), None], "21 hypotheses given, at most 20"),
    ],
)
def test_bad_requests_come_back_as_messages(client, clips, api_name, inputs, message):
    inputs = [handle_file(clips[value]) if value in clips else value for value in inputs]
    with pytest.raises(AppError, match=message) as caught:
        client.predict(*inputs, api_name=api_name)
    assert "/tmp" not in str(caught.value) and "Traceback" not in str(caught.value)


def test_messages_reach_a_client_as_written(client, clips):
    with pytest.raises(AppError) as caught:
        client.predict("🎉 '!'", handle_file(clips["prompt"]), "a b", 2, 2.0, 1.0, 0, 1.0, api_name="/speak")
    assert caught.value.message == (
        "text \"🎉 '!'\" has no letter or digit (only symbols such as emoji, punctuation or control "
        "characters): nothing to speak"
    ), "no HTML escapes (&#x27;) for an API client"


def test_each_tab_listens_and_speaks_in_the_language_chosen(tiny_dir, tmp_path, clips):
    """With German adapters beside the English ones, the page offers both; German uses German's
    adapters, English the English ones, and a language the server has no adapters for is refused."""
    from unispeech.interfaces.demo import DemoHandlers, build_demo
    from unispeech.model.adapters import active_task, add_task_adapter, save_task_adapter
    from unispeech.testing import tiny_model

    for subfolder in ("asr", "de/asr", "de/tts"):
        model, _ = tiny_model()
        model.load_state_dict(load(tiny_dir, adapters=None, weight_format="fp32").model.state_dict())
        task = subfolder.rsplit("/", 1)[-1]
        add_task_adapter(model, task)
        save_task_adapter(model, task, tmp_path / subfolder)
    speech = load(tiny_dir, adapters=tmp_path, languages=("en", "de"))
    handlers = DemoHandlers(speech, SETTINGS)
    for language, adapter in (("de", "asr-de"), ("en", "asr")):
        handlers.transcribe(str(clips["speech"]), 1, language)
        assert active_task(speech.model) == adapter
    handlers.speak("Guten Tag.", str(clips["prompt"]), "hallo", 1, 0.0, 1.0, 0, 1.0, "de")
    assert active_task(speech.model) == "tts-de"
    with pytest.raises(ValueError, match="no adapters for language 'fr': this server has en, de"):
        handlers.transcribe(str(clips["speech"]), 1, "fr")
    with pytest.raises(ValueError, match="no adapters for language 'fr'"):
        build_demo(speech, SETTINGS, language="fr")


def test_page_text_escapes_only_what_html_would_read_as_markup():
    plain = 'it\'s "quoted": 3 < 4 & 5 > 2, a<-b, tom & jerry'
    assert page_text(plain) == plain
    assert page_text("<b>bold</b> <!-- c --> &amp; &#39; &lt") == (
        "&lt;b>bold&lt;/b> &lt;!-- c --> &amp;amp; &amp;#39; &amp;lt"
    )


def test_an_upload_over_the_size_limit_is_refused_by_the_client_and_the_server(server, client, clips):
    import httpx

    with pytest.raises(ValueError, match="exceeds the maximum file size of 524288 bytes"):
        client.predict(handle_file(clips["big"]), 1, api_name="/transcribe")
    for name, status in (("big", 413), ("speech", 200)):  # what a client that does not check meets
        with open(clips[name], "rb") as upload:
            response = httpx.post(f"{server}gradio_api/upload", files={"files": (f"{name}.wav", upload)})
        assert response.status_code == status, response.text


def test_twenty_requests_at_once_complete_or_are_refused_by_the_full_queue(
    speech, client, clips, monkeypatch
):
    transcribe = speech.transcribe

    def slow_transcribe(*args, **kwargs):  # slow enough for the queue (4) to fill up
        time.sleep(0.3)
        return transcribe(*args, **kwargs)

    monkeypatch.setattr(speech, "transcribe", slow_transcribe)
    jobs = [client.submit(handle_file(clips["speech"]), 1, api_name="/transcribe") for _ in range(20)]
    done, refused = 0, 0
    for job in jobs:
        try:
            *_, timing = job.result(timeout=60)
            done += bool(timing)
        except Exception as error:
            assert "queue is full" in str(error).lower(), error
            refused += 1
    assert done + refused == 20 and done >= 1 and refused >= 1
    monkeypatch.undo()
    assert (
        client.predict(handle_file(clips["speech"]), 1, api_name="/transcribe")[0]
        == speech.transcribe(str(clips["speech"])).text
    )


def test_mel_picture_puts_low_frequencies_at_the_bottom():
    rate = 22050
    seconds = np.arange(rate // 2) / rate
    picture = mel_picture((0.5 * np.sin(2 * np.pi * 200 * seconds)).astype(np.float32))  # a low tone
    assert picture.dtype == np.uint8 and picture.shape == (80 * MEL_ROW_HEIGHT, len(seconds) // 256, 3)
    brightness = picture.astype(float).sum(axis=(1, 2))
    assert brightness[-len(brightness) // 4 :].mean() > brightness[: len(brightness) // 4].mean()


@pytest.mark.parametrize(
    ("field", "value"), [("queue_size", 0), ("concurrency", 0), ("max_upload_mb", -1), ("max_text_chars", 0)]
)
def test_bad_settings_are_refused_by_the_cli_before_the_model_loads(tiny_dir, capsys, field, value):
    flag = "--" + field.replace("_", "-")
    with pytest.raises(ValueError, match=field):
        DemoSettings(**{field: value})
    code = main(["demo", "--model", str(tiny_dir / "missing"), "--adapters", "none", flag, str(value)])
    assert code == 2 and field in capsys.readouterr().err  # the settings error, not the missing model


def test_an_adapter_folder_of_another_task_stops_the_demo_before_it_serves(
    tiny_dir, tmp_path, capsys, monkeypatch
):
    from unispeech.model.adapters import add_task_adapter, save_task_adapter
    from unispeech.testing import tiny_model

    model, _ = tiny_model()
    add_task_adapter(model, "tts")
    folder = save_task_adapter(model, "tts", tmp_path / "adapters" / "asr")  # TTS placed as asr/
    monkeypatch.setattr(
        "unispeech.interfaces.demo.launch", lambda *args, **kwargs: pytest.fail("the demo started")
    )
    code = main(["demo", "--model", str(tiny_dir), "--adapters", str(folder.parent)])
    assert code == 2 and f"the adapter at {folder} holds task 'tts', not 'asr'" in capsys.readouterr().err


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Chromium and its driver: apt-get install chromium chromium-driver",
)


@contextlib.contextmanager
def chromium(screenshot):
    """A headless Chromium (the system's driver, nothing downloaded); `screenshot` is saved at the end."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (dev extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1200")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.save_screenshot(str(screenshot))
        driver.quit()


@pytest.mark.browser
@needs_chromium
def test_transcribe_in_a_real_browser(speech, server, clips, tmp_path):
    """Upload a wav in headless Chromium, click Transcribe, read the transcript off the page.
    A screenshot of the page is saved as tmp_path / 'transcribe.png'."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    screenshot = tmp_path / "transcribe.png"
    with chromium(screenshot) as driver:
        driver.get(server)
        wait = WebDriverWait(driver, 30)
        upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#transcribe-audio input[type=file]"))
        upload.send_keys(str(clips["speech"]))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#transcribe-audio audio"))  # uploaded
        driver.find_element(By.CSS_SELECTOR, "#transcribe-button").click()
        transcript = driver.find_element(By.CSS_SELECTOR, "#transcribe-text textarea")
        wait.until(lambda d: transcript.get_attribute("value"))
        text = transcript.get_attribute("value")
        timing = driver.find_element(By.CSS_SELECTOR, "#transcribe-timing").text
    expected = speech.transcribe(str(clips["speech"])).text
    assert expected and text == expected
    assert timing.startswith("1.00 s of audio transcribed in")
    assert screenshot.stat().st_size > 0
    print(f"screenshot of the page: {screenshot}")


@pytest.mark.browser
@needs_chromium
def test_an_error_shows_in_the_page_as_written(server, clips, tmp_path):
    """The page renders error messages as HTML: text that looks like markup still shows as written."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    text = "♪ '<!--' & ♫"  # no letter or digit: refused, and echoed in the message
    with chromium(tmp_path / "error.png") as driver:
        driver.get(server)
        wait = WebDriverWait(driver, 30)
        wait.until(
            lambda d: d.find_element(By.XPATH, "//button[@role='tab' and normalize-space()='Speak']")
        ).click()
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#speak-text textarea")).send_keys(text)
        driver.find_element(By.CSS_SELECTOR, "#speak-prompt input[type=file]").send_keys(str(clips["prompt"]))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#speak-prompt audio"))  # uploaded
        driver.find_element(By.CSS_SELECTOR, "#speak-prompt-text textarea").send_keys("a b")
        driver.find_element(By.CSS_SELECTOR, "#speak-button").click()
        # the toast element appears before its text does: wait for the text
        shown = wait.until(
            lambda d: "".join(e.text for e in d.find_elements(By.CSS_SELECTOR, "[data-testid='toast-text']"))
        )
    assert f"text {text!r} has no letter or digit" in shown, shown
