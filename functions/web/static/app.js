// The blog's page: posts, comments and (on the local stack) the operations panel.
//
// Plain JavaScript, no build step, no dependencies. User content is only ever put into the page
// with textContent, never as HTML. Everything refreshes by polling once a second while the page
// is visible, with If-None-Match so an unchanged page costs a 304; while it is hidden, the
// polls back off (2 s, 4 s, ... up to a minute) and the page polls at once when shown again.
"use strict";

(() => {
  const POLL_MS = 1000;
  const HIDDEN_POLL_MAX_MS = 60000;
  const REBUILD_POLL_MS = 500;
  const STATUS_TEXT = { pending: "awaiting moderation", rejected: "rejected" };

  const $ = (id) => document.getElementById(id);

  // ---- the API --------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // Paths are relative to the page, so it works under a stage path such as /api/ too.
  async function call(method, path, body) {
    return (await exchange(method, path, body)).data;
  }

  // The last answer of each GET with an ETag: sent back as If-None-Match, and used again
  // when the server answers 304 Not Modified.
  const cached = new Map(); // path -> {etag, data, next}

  // A write's Idempotency-Key: one per action, kept for its retry, so a retried write is not
  // done twice (docs/api.md). Needs a secure context (https, or the loopback address).
  function newKey() {
    return globalThis.crypto && crypto.randomUUID ? crypto.randomUUID() : null;
  }

  // The answer's data and the URL of its `Link: <...>; rel="next"` header (null without one).
  // A write whose answer was lost (the server unreachable) is sent once more with its key.
  async function exchange(method, path, body) {
    const init = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const write = method !== "GET";
    const key = write && path.startsWith("posts") ? newKey() : null;
    if (key) init.headers["Idempotency-Key"] = key;
    const known = method === "GET" ? cached.get(path) : undefined;
    if (known) init.headers["If-None-Match"] = known.etag;
    let response;
    for (let attempt = 1; ; attempt += 1) {
      try {
        response = await fetch(path, init);
        break;
      } catch (error) {
        if (!key || attempt > 1) {
          throw new ApiError(0, "unreachable", `the server did not answer (${error.message})`);
        }
      }
    }
    if (response.status === 304 && known) return { data: known.data, next: known.next };
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = data && typeof data === "object" ? data.error : null;
      if (error && typeof error === "object") {
        throw new ApiError(response.status, String(error.code), String(error.message));
      }
      const message = (data && (data.message || data.Message)) || text || response.statusText;
      throw new ApiError(response.status, `http_${response.status}`, `${response.status} ${message}`);
    }
    const answer = { data, next: nextLink(response) };
    const etag = response.headers.get("ETag");
    if (method === "GET" && etag) cached.set(path, { etag, ...answer });
    return answer;
  }

  // The delay before the next poll: a second while the page is visible; while it is hidden,
  // twice the last one, up to a minute. Showing the page polls at once (see start).
  function pollDelay(last) {
    return document.hidden ? Math.min(Math.max(last, POLL_MS) * 2, HIDDEN_POLL_MAX_MS) : POLL_MS;
  }

  function nextLink(response) {
    for (const part of (response.headers.get("Link") || "").split(",")) {
      const match = /<([^>]*)>\s*;\s*rel="?next"?/.exec(part);
      if (match) return new URL(match[1], response.url).href;
    }
    return null;
  }

  // ---- errors, shown in a banner until they are fixed or dismissed ----------------------------

  const errors = new Map();

  function showError(key, message) {
    errors.set(key, message);
    renderErrors();
  }

  function clearError(key) {
    if (errors.delete(key)) renderErrors();
  }

  function renderErrors() {
    const box = $("errors");
    box.replaceChildren();
    for (const [key, message] of errors) {
      const row = document.createElement("div");
      row.className = "error";
      row.dataset.key = key;
      const text = document.createElement("span");
      text.className = "message";
      text.textContent = message;
      const close = document.createElement("button");
      close.type = "button";
      close.textContent = "×";
      close.title = "Dismiss";
      close.setAttribute("aria-label", "Dismiss");
      close.addEventListener("click", () => clearError(key));
      row.append(text, close);
      box.append(row);
    }
  }

  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  function clock(date = new Date()) {
    return date.toLocaleTimeString([], { hour12: false });
  }

  // Runs an action with its controls (a button, or a form's inputs and buttons) disabled, so
  // nothing is typed or sent twice meanwhile; an API error goes to the banner.
  async function act(control, key, what, action) {
    const controls = control instanceof HTMLFormElement ? [...control.elements] : [control];
    const focused = document.activeElement;
    for (const element of controls) element.disabled = true;
    try {
      const result = await action();
      clearError(key);
      return result;
    } catch (error) {
      showError(key, `${what}: ${error.message}`);
      return undefined;
    } finally {
      for (const element of controls) element.disabled = false;
      if (controls.includes(focused)) focused.focus();
    }
  }

  // ---- posts and comments ---------------------------------------------------------------------

  // The query view (GET /posts), and what this page wrote that the view may not show yet: the
  // answers of POST /posts and POST /posts/{id}/comments. During a query outage the view stands
  // still; what was written meanwhile is shown marked "not in the view yet" until it catches up.
  let view = {};
  // GET /posts is one page, newest first; "Load more" follows its Link header. Every poll
  // re-reads the pages down to the oldest post loaded so far, so older posts stay up to date.
  const firstPage = pageLimit() ? `posts?limit=${pageLimit()}` : "posts";
  let nextPage = null; // the URL of the page after the last one loaded, if there is one
  let oldestLoaded = null; // the oldest post id "Load more" brought in (null: first page only)
  const written = new Map(); // post id -> {id, title, comments: Map(comment id -> comment)}
  // The text of each comment this page sent, by comment id: the API serves a comment's text
  // only once it is approved, so until then the author sees it from what the page sent.
  const sentTexts = new Map();
  const sentAuthors = new Map();
  const postNodes = new Map(); // post id -> {item, title, badge, list, comments: Map}

  function remember(postId, title, comments) {
    let post = written.get(postId);
    if (!post) {
      post = { id: postId, title, comments: new Map() };
      written.set(postId, post);
    }
    for (const comment of comments || []) post.comments.set(comment.id, comment);
  }

  function postNode(id) {
    let node = postNodes.get(id);
    if (node) return node;
    const item = $("post-template").content.firstElementChild.cloneNode(true);
    item.dataset.postId = id;
    node = {
      item,
      title: item.querySelector(".post-title"),
      badge: item.querySelector(".badge.unviewed"),
      list: item.querySelector(".comments"),
      comments: new Map(),
    };
    const form = item.querySelector(".new-comment");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      addComment(id, form);
    });
    postNodes.set(id, node);
    return node;
  }

  function commentNode(node, id) {
    let entry = node.comments.get(id);
    if (entry) return entry;
    const item = document.createElement("li");
    item.className = "comment";
    item.dataset.commentId = id;
    const author = document.createElement("span");
    author.className = "author";
    const text = document.createElement("span");
    text.className = "text";
    const note = document.createElement("span");
    note.className = "badge awaiting";
    note.textContent = "awaiting moderation";
    const badge = document.createElement("span");
    badge.className = "badge unviewed";
    badge.textContent = "not in the view yet";
    item.append(author, text, note, badge);
    entry = { item, author, text, note, badge };
    node.comments.set(id, entry);
    return entry;
  }

  // Puts children in the given order, moving only those out of place (so focus and input stay).
  function arrange(parent, children) {
    children.forEach((child, index) => {
      if (parent.children[index] !== child) parent.insertBefore(child, parent.children[index] || null);
    });
    while (parent.children.length > children.length) parent.lastElementChild.remove();
  }

  function renderComments(node, inView, local) {
    const shown = new Map();
    for (const comment of (inView && inView.comments) || []) shown.set(comment.id, [comment, true]);
    for (const comment of (local && local.comments.values()) || []) {
      if (!shown.has(comment.id)) shown.set(comment.id, [comment, false]);
    }
    const ids = [...shown.keys()].sort(); // ids sort by creation time
    const items = ids.map((id) => {
      const [comment, viewed] = shown.get(id);
      const entry = commentNode(node, id);
      const status = String(comment.status);
      const own = status === "pending" && sentTexts.has(id);
      entry.item.className = `comment ${status}${own ? " own" : ""}`;
      entry.item.dataset.status = status;
      let text = STATUS_TEXT[status] || status;
      if (status === "approved") text = String(comment.content);
      if (own) text = sentTexts.get(id);
      setText(entry.text, text);
      entry.note.hidden = !own;
      const author = comment.author || (own ? sentAuthors.get(id) : "");
      setText(entry.author, author ? `${String(author)}:` : "");
      entry.author.hidden = !author;
      entry.badge.hidden = viewed;
      return entry.item;
    });
    for (const id of [...node.comments.keys()]) if (!shown.has(id)) node.comments.delete(id);
    arrange(node.list, items);
  }

  function renderPosts() {
    const ids = [...new Set([...Object.keys(view), ...written.keys()])].sort().reverse();
    const items = ids.map((id) => {
      const inView = view[id];
      const local = written.get(id);
      const node = postNode(id);
      setText(node.title, String((inView || local).title));
      node.item.classList.toggle("unviewed", !inView);
      node.badge.hidden = Boolean(inView);
      renderComments(node, inView, local);
      return node.item;
    });
    for (const id of [...postNodes.keys()]) if (!ids.includes(id)) postNodes.delete(id);
    arrange($("posts"), items);
    $("no-posts").hidden = ids.length > 0;
  }

  // The page size from the page's own URL (`/?limit=3`), or none: the API's default.
  function pageLimit() {
    const limit = Number(new URLSearchParams(window.location.search).get("limit"));
    return Number.isInteger(limit) && limit >= 1 && limit <= 200 ? limit : null;
  }

  function oldestOf(posts) {
    return Object.keys(posts).sort()[0];
  }

  async function readPages() {
    const posts = {};
    let url = firstPage;
    for (;;) {
      const page = await exchange("GET", url);
      Object.assign(posts, page.data || {});
      const oldest = oldestOf(page.data || {});
      if (!page.next || oldestLoaded === null || oldest === undefined || oldest <= oldestLoaded) {
        return { posts, next: page.next };
      }
      url = page.next;
    }
  }

  function showLoadMore() {
    $("load-more").hidden = nextPage === null;
  }

  async function loadMore() {
    if (nextPage === null) return;
    const page = await act($("load-more"), "load-more", "Could not load more posts", () =>
      exchange("GET", nextPage),
    );
    if (!page) return;
    const posts = page.data || {};
    Object.assign(view, posts);
    const oldest = oldestOf(posts);
    if (oldest !== undefined && (oldestLoaded === null || oldest < oldestLoaded)) oldestLoaded = oldest;
    nextPage = page.next;
    showLoadMore();
    renderPosts();
  }

  let postsTimer = null;
  let postsDelay = POLL_MS;

  async function pollPosts() {
    postsTimer = null;
    try {
      const { posts, next } = await readPages();
      view = posts;
      nextPage = next;
      showLoadMore();
      clearError("posts");
      setText($("updated"), `updated ${clock()}`);
      renderPosts();
    } catch (error) {
      showError("posts", `Could not load the posts: ${error.message}`);
      setText($("updated"), "not up to date");
    } finally {
      postsDelay = pollDelay(postsDelay);
      postsTimer = setTimeout(pollPosts, postsDelay);
    }
  }

  // Shown again: poll now rather than at the end of a long hidden back-off.
  function pollNowIfWaiting() {
    if (document.hidden || postsTimer === null) return;
    clearTimeout(postsTimer);
    postsDelay = POLL_MS;
    pollPosts();
  }

  async function createPost(form) {
    const input = form.elements.namedItem("title");
    const post = await act(form, "new-post", "Could not publish the post", () =>
      call("POST", "posts", { title: input.value }),
    );
    if (!post) return;
    remember(post.id, post.title, []);
    input.value = "";
    renderPosts();
  }

  async function addComment(postId, form) {
    const input = form.elements.namedItem("content");
    const author = form.elements.namedItem("author");
    const body = { content: input.value };
    if (author && author.value.trim()) body.author = author.value;
    const comments = await act(form, `comment-${postId}`, "Could not add the comment", () =>
      call("POST", `posts/${encodeURIComponent(postId)}/comments`, body),
    );
    if (!comments) return;
    // The one this request created: the pending comment the answer shows the text of.
    const mine = comments.find((c) => c.status === "pending" && typeof c.content === "string");
    if (mine) {
      sentTexts.set(mine.id, mine.content);
      if (mine.author) sentAuthors.set(mine.id, mine.author);
    }
    const title = (view[postId] || written.get(postId) || {}).title || "";
    remember(postId, title, comments);
    input.value = "";
    renderPosts();
  }

  // ---- the operations panel (local stack only) ------------------------------------------------

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function renderStatus(status) {
    const rows = status.consumers.map((c) => {
      const tr = document.createElement("tr");
      tr.dataset.consumer = c.consumer;
      tr.append(
        cell(c.consumer),
        cell(c.subscribed ? "yes" : "NO", c.subscribed ? "good" : "bad"),
        cell(c.paused ? "YES" : "no", c.paused ? "bad" : "good"),
        cell(String(c.queue_depth), "num"),
        cell(String(c.dlq_depth), c.dlq_depth > 0 ? "num bad" : "num"),
        cell(`${c.watermark} / ${c.archive_head}`, "num"),
        cell(String(c.lag), c.lag > 0 ? "num bad" : "num"),
        cell(String(c.parked), c.parked > 0 ? "num bad" : "num"),
      );
      return tr;
    });
    $("consumers").replaceChildren(...rows);
    setText($("archive-head"), String(status.archive_head));
    setText($("unsent"), String(status.unsent_outbox));
    const age = status.oldest_unsent_age_seconds;
    setText($("oldest-unsent"), age === null ? "–" : `${age.toFixed(1)} s`);

    lastStatus = status;
    renderOutageState();
  }

  // The state of the consumer chosen in the outage form.
  let lastStatus = null;

  function renderOutageState() {
    const name = $("outage-consumer").value;
    const consumer = lastStatus && lastStatus.consumers.find((c) => c.consumer === name);
    const state = $("outage-state");
    if (!consumer) return;
    const down = [!consumer.subscribed && "unsubscribed", consumer.paused && "paused"].filter(Boolean);
    setText(state, down.length ? `${name} is down (${down.join(", ")})` : `${name} is live`);
    state.className = `state ${down.length ? "down" : "up"}`;
  }

  let opsTimer = null;
  let opsDelay = POLL_MS;

  async function pollOps() {
    opsTimer = null;
    try {
      renderStatus(await call("GET", "ops/status"));
      $("ops").hidden = false;
      clearError("ops");
    } catch (error) {
      if (error.status === 404 || error.status === 403) {
        $("ops").hidden = true; // a deployed stage: no operations endpoints
        return;
      }
      showError("ops", `Could not read the operations status: ${error.message}`);
    }
    opsDelay = pollDelay(opsDelay);
    opsTimer = setTimeout(pollOps, opsDelay);
  }

  function refreshOps() {
    if (opsTimer === null) return; // a poll is under way, or the panel is off
    clearTimeout(opsTimer);
    pollOps();
  }

  function describeCatchUp(report) {
    if (!report) return "";
    return (
      `caught up from the archive: ${report.behind} behind, ${report.recovered} recovered, ` +
      `${report.ignored} ignored, ${report.holes_skipped} holes skipped; ` +
      `watermark ${report.watermark_before} → ${report.watermark_after} (head ${report.head})`
    );
  }

  async function startOutage() {
    const consumer = $("outage-consumer").value;
    const mode = $("outage-mode").value;
    const done = await act($("outage-start"), "outage", "Could not start the outage", () =>
      call("POST", `ops/outage/${consumer}/start`, { mode }),
    );
    if (done) setText($("outage-result"), `Outage started (${done.mode}) of ${done.consumer} at ${clock()}.`);
    refreshOps();
  }

  async function endOutage() {
    const consumer = $("outage-consumer").value;
    const done = await act($("outage-end"), "outage", "Could not end the outage", () =>
      call("POST", `ops/outage/${consumer}/end`),
    );
    if (done) {
      setText($("outage-result"), `Outage ended of ${done.consumer} at ${clock()}: ${describeCatchUp(done.report)}.`);
    }
    refreshOps();
  }

  async function sweep() {
    const done = await act($("sweep"), "sweep", "Could not run the sweeper", () => call("POST", "ops/sweep"));
    if (done) setText($("outage-result"), `Outbox sweeper ran at ${clock()}.`);
    refreshOps();
  }

  function renderRebuild(progress) {
    const bar = $("rebuild-progress");
    bar.max = Math.max(progress.total, 1);
    bar.value = progress.running ? progress.done : progress.report ? bar.max : 0;
    $("rebuild").disabled = progress.running;
    let text = "";
    if (progress.running) {
      text = `Rebuilding… ${progress.done} / ${progress.total} positions`;
    } else if (progress.error) {
      text = `The rebuild failed: ${progress.error}`;
    } else if (progress.report) {
      const r = progress.report;
      text =
        `Rebuilt ${r.old_version} → ${r.new_version}: ${r.events} events, ${r.rows} rows ` +
        `(${progress.total} positions); ${describeCatchUp(r.catch_up)}.`;
    }
    setText($("rebuild-result"), text);
  }

  async function followRebuild() {
    try {
      const progress = await call("GET", "ops/rebuild/query");
      renderRebuild(progress);
      clearError("rebuild");
      if (progress.error) showError("rebuild", `The rebuild failed: ${progress.error}`);
      if (progress.running) setTimeout(followRebuild, REBUILD_POLL_MS);
    } catch (error) {
      if (error.status === 404 || error.status === 403) return;
      showError("rebuild", `Could not read the rebuild's progress: ${error.message}`);
      setTimeout(followRebuild, POLL_MS);
    }
  }

  async function rebuild() {
    const started = await act($("rebuild"), "rebuild", "Could not start the rebuild", () =>
      call("POST", "ops/rebuild/query"),
    );
    if (!started) return;
    renderRebuild(started);
    followRebuild();
  }

  // ---- start ----------------------------------------------------------------------------------

  function start() {
    $("new-post").addEventListener("submit", (event) => {
      event.preventDefault();
      createPost(event.target);
    });
    $("outage").addEventListener("submit", (event) => {
      event.preventDefault();
      startOutage();
    });
    $("outage-end").addEventListener("click", endOutage);
    $("outage-consumer").addEventListener("change", renderOutageState);
    $("load-more").addEventListener("click", loadMore);
    $("sweep").addEventListener("click", sweep);
    $("rebuild").addEventListener("click", rebuild);
    document.addEventListener("visibilitychange", () => {
      pollNowIfWaiting();
      if (!document.hidden) {
        opsDelay = POLL_MS;
        refreshOps();
      }
    });
    pollPosts();
    pollOps();
    followRebuild();
  }

  start();
})();
