FROM python:3.13-slim
ENV PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH
# Anything run in the image (manage.py included, whose own default is dev) gets the production settings.
ENV DJANGO_SETTINGS_MODULE=crm.settings.prod
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
# collectstatic needs some key to import the settings; the running container is given the real one.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input
EXPOSE 8000
CMD ["gunicorn", "crm.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
