import base64
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dnnlab.report.document import Document  # noqa: E402
from dnnlab.report.figures import save_figure  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_markdown_and_html_say_the_same_and_html_embeds_pngs(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    png = save_figure(fig, tmp_path / "curve.png")
    doc = Document("Report")
    doc.heading("Results")
    doc.paragraph("BN is **faster**: `2.0x` <fewer> epochs")
    doc.table(["part", "acc"], [["c", 0.54]])
    doc.figure(png, "Validation loss")
    md_path, html_path = doc.write(tmp_path, "report")
    markdown = md_path.read_text()
    assert "## Results" in markdown and "| c | 0.54 |" in markdown and "![Validation loss](curve.png)" in markdown
    page = html_path.read_text()
    assert "<strong>faster</strong>" in page and "<code>2.0x</code>" in page and "&lt;fewer&gt;" in page
    (encoded,) = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert base64.b64decode(encoded) == png.read_bytes() and png.read_bytes().startswith(PNG_MAGIC)
    assert "curve.png" not in page  # standalone: no link to the file
