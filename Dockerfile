# The monitor image: one image for the migration step, the workers and beat (see docker-compose.yml).
#   docker build -t monitor .                               TensorFlow's CPU build (the default)
#   docker build -t monitor:gpu --build-arg TENSORFLOW_GPU=true .   CUDA build, for GPU workers
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

ARG TENSORFLOW_GPU=false

# The source is copied, installed, then removed: the image runs the installed package only.
COPY . /tmp/monitor-src
WORKDIR /tmp/monitor-src
RUN pip install . \
    && if [ "$TENSORFLOW_GPU" = "true" ]; then \
        pip uninstall --yes tensorflow-cpu && pip install "tensorflow[and-cuda]==2.21.*"; \
    fi
# The migrations are not inside the package: put them where monitor.storage.db looks for them
# (asked from / so that the installed package answers, not the source folder).
RUN cd / \
    && cp -r /tmp/monitor-src/migrations \
        "$(python -c 'from monitor.storage.db import MIGRATIONS_DIR; print(MIGRATIONS_DIR)')" \
    && rm -rf /tmp/monitor-src

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin monitor
USER monitor
# An empty working folder: `python -m celery` puts it first on sys.path, so no stray source shadows
# the installed package; celery beat keeps its schedule file here.
WORKDIR /home/monitor
ENV MONITOR_HOME=/home/monitor/.monitor

ENTRYPOINT ["monitor"]
CMD ["--help"]
