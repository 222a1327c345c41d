# Waits until every model in models.config has a version on disk, so that TensorFlow Serving
# starts only then: it opens no port while a model has none, and one missing base path holds
# back every model, so on an empty repository its startupProbe would kill it again and again.
# The pod waits in its init container instead, Ready once the models are trained.
#   sh wait-for-models.sh MODELS_CONFIG [SECONDS_BETWEEN_CHECKS]
# POSIX sh and sed: it runs in TensorFlow Serving's image and in the suite's own. It reads only
# the `base_path: "..."` lines that k8s/base/tfserving/models.config has, one per model.
set -eu
config="${1:?usage: wait-for-models.sh MODELS_CONFIG [SECONDS_BETWEEN_CHECKS]}"
interval="${2:-10}"

# A version is a directory named by a number, holding a SavedModel (as TensorFlow Serving
# loads them; training publishes one by renaming it into place, so it is never half there).
has_version() {
  for version in "$1"/*/; do
    case "$(basename "$version")" in
      '' | *[!0-9]*) continue ;;
    esac
    if [ -f "${version}saved_model.pb" ] || [ -f "${version}saved_model.pbtxt" ]; then
      return 0
    fi
  done
  return 1
}

base_paths="$(sed -n 's/^[[:space:]]*base_path:[[:space:]]*"\([^"]*\)".*$/\1/p' "$config")"
if [ -z "$base_paths" ]; then
  echo "wait-for-models: no base_path in $config" >&2
  exit 1
fi
for base_path in $base_paths; do
  if ! has_version "$base_path"; then
    echo "wait-for-models: waiting for a first version under $base_path (train it: README)"
    until has_version "$base_path"; do
      sleep "$interval"
    done
  fi
  echo "wait-for-models: $base_path has a version"
done
