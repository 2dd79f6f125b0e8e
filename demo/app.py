"""The unispeech Gradio demo as a script (for hosts that run `python app.py`, such as Spaces).

    python demo/app.py [--model smol|PATH] [--host 127.0.0.1] [--port 7860] [--queue-size 16] ...

The same as `unispeech demo ...`: the app is built by `unispeech.interfaces.demo.build_demo`, the
flags are the CLI's.
"""

import sys

from unispeech.interfaces.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
