"""Audio: sound in and sound out, with no model in it.

This layer owns what happens to a waveform before the model reads it and after TTS has made a mel:
loading any file or array and the two spectrograms (`features.py`: Whisper's log-mel for the
encoder, the vocoder's log-mel for TTS), turning a mel back into sound (`vocoder.py`: HiFi-GAN,
Griffin-Lim), and whether a stretch of audio holds speech at all (`speech_presence.py`: Silero
VAD). It imports nothing else of unispeech.
"""
