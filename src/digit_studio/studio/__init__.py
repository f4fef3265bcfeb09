"""The studio: the pipeline facade over a `Reading` (analysis), the pictures drawn from it (render), the
report, the About tab and the Gradio app, a thin shell over the rest."""
