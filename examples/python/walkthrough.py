"""A notebook-style tour of MedInfer from Python (run from the repository root):

    .venv/bin/python examples/python/walkthrough.py

Each section is a cell: load the bundled models, score a DataFrame, check the results
against the library that trained each model, explain predictions with SHAP, and see how
mistakes are reported.
"""
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))            # the binding, when not pip-installed
sys.path.insert(0, str(ROOT / "examples" / "models"))

import numpy as np  # noqa: E402

import medinfer  # noqa: E402
from noshow_data import make_noshow  # noqa: E402

MODELS = ROOT / "examples" / "models"

# %% 1. Load the no-show model and look at it
model = medinfer.Model.load(MODELS / "noshow_xgb.json")
print(model)
print("library:", medinfer.library_path())
print("first features:", model.feature_names[:5], "...")

# %% 2. Score a DataFrame of appointments (NaN = missing)
frame, _ = make_noshow(10_000, seed=123)
risk = model.predict(frame)
print(f"\nscored {len(risk)} appointments; mean risk {risk.mean():.3f}, "
      f"{(risk > 0.5).mean():.1%} above 0.5")

# %% 3. Same answers as the training library
import xgboost as xgb  # noqa: E402

reference = xgb.Booster(model_file=str(MODELS / "noshow_xgb.json")).inplace_predict(frame)
print(f"max |medinfer - xgboost| = {np.abs(risk - reference).max():.2e}")

# %% 4. Why? The top SHAP drivers of one appointment
drivers = model.top_drivers(frame.iloc[:1], k=5)[0]
print(f"\nappointment 0: risk {risk[0]:.3f} (expected value {model.expected_value():+.3f} in log-odds)")
for name, value in drivers:
    print(f"  {name:<42} {value:+.4f}")
contributions = model.shap_contributions(frame.iloc[:1])
print(f"SHAP values + bias = {contributions.sum():+.6f}, raw margin = {model.predict(frame.iloc[:1], output='raw')[0]:+.6f}")

# %% 5. Timing one row, as a scoring service would
row = frame.to_numpy(dtype=np.float32)[:1]
calls = 20_000
start = time.perf_counter()
for _ in range(calls):
    model.predict(row)
print(f"\none-row predict from Python: {(time.perf_counter() - start) / calls * 1e6:.1f} us per call")

# %% 6. The breast-tumour forest takes raw measurements (the scaler is inside the model)
import pandas as pd  # noqa: E402

breast = medinfer.Model.load(MODELS / "breast_rf.json")
tumours = pd.read_csv(MODELS / "breast_sample.csv")
proba = breast.predict(tumours)
print("\nbreast forest:", breast)
print(pd.DataFrame({"p(benign)": proba[:, 0], "p(malignant)": proba[:, 1]}).round(3).to_string())

# %% 7. LightGBM with a categorical feature
lgbm = medinfer.Model.load(MODELS / "noshow_lgbm.txt")
import lightgbm as lgb  # noqa: E402

reference = lgb.Booster(model_file=str(MODELS / "noshow_lgbm.txt")).predict(frame)
print(f"\nLightGBM: max |medinfer - lightgbm| = {np.abs(lgbm.predict(frame) - reference).max():.2e}")

# %% 8. Mistakes are reported, never crash the notebook
try:
    model.predict(frame.drop(columns=["Weather_Conditions"]))
except ValueError as error:
    print("\nmissing column:", error)
try:
    model.predict(np.zeros((2, 22), dtype=np.float32))
except medinfer.MedInferError as error:
    print(f"wrong width: {error.status_name}: {error}")
try:
    medinfer.Model.from_bytes(b'{"learner": {"objective": ')
except medinfer.MedInferError as error:
    print(f"truncated file: {error.status_name}: {error}")

# %% 9. Summary table
print("\n| model | rows | max abs diff vs training library |")
print("| --- | --- | --- |")
print(f"| noshow_xgb.json | {len(frame)} | {np.abs(risk - xgb.Booster(model_file=str(MODELS / 'noshow_xgb.json')).inplace_predict(frame)).max():.1e} |")
print(f"| noshow_lgbm.txt | {len(frame)} | {np.abs(lgbm.predict(frame) - reference).max():.1e} |")

# %% 10. Plots: one appointment's waterfall and the drivers over many (PNG files)
try:
    from medinfer.plots import importance_bar, waterfall
except ImportError:
    waterfall = None
if waterfall is not None:
    out_dir = ROOT / ".build" / "walkthrough"
    out_dir.mkdir(parents=True, exist_ok=True)
    print("\nwrote", waterfall(model, frame.iloc[:1], out_dir / "noshow_waterfall.png",
                               title="Why appointment 0 is at risk"))
    print("wrote", importance_bar(model, frame.iloc[:2000], out_dir / "noshow_drivers.png",
                                  title="No-show model: main drivers"))
    print("wrote", importance_bar(breast, tumours, out_dir / "breast_drivers.png", output=1,
                                  title="Breast forest: drivers of malignancy"))

# %% 11. The skin-lesion CNN (ONNX): numpy images in, labelled probabilities out
net = medinfer.Network.load(MODELS / "skin_cnn.onnx")
print("\n", net)


def read_ppm(path: Path) -> np.ndarray:
    magic, width, height, _, pixels = path.read_bytes().split(maxsplit=4)
    return np.frombuffer(pixels[: int(width) * int(height) * 3], np.uint8).reshape(int(height), int(width), 3)


for image_path in sorted((ROOT / "examples" / "images").glob("*.ppm")):
    image = read_ppm(image_path)
    start = time.perf_counter()
    probabilities = net.classify_image(image)     # any size: the model resizes itself
    elapsed = (time.perf_counter() - start) * 1e3
    best = max(probabilities, key=probabilities.get)
    print(f"{image_path.name:<28} {image.shape[1]}x{image.shape[0]:<5} {best:<5} "
          f"p={probabilities[best]:.3f}  {elapsed:6.1f} ms")
# The same network without its in-model resize takes [1, 300, 300, 3] in [0, 1]; the
# image call resizes (tf.image.resize bilinear) and rescales for it.
fixed = medinfer.Network.load(MODELS / "skin_cnn_300.onnx")
print("fixed-size model:", {k: round(v, 3) for k, v in fixed.classify_image(image).items()})
