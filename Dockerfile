FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ procps && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/jtm
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm link
# Not root: tasks run as the worker's user.
USER node
