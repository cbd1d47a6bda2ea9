// The gallery's only script (served by the bot; the Content-Security-Policy allows no inline script):
// infinite scroll over the "More images" links, and the "Copy command" button.
"use strict";

function loadMore(link) {
  if (link.dataset.busy) return;
  link.dataset.busy = "1";
  const grid = document.getElementById("gallery");
  link.textContent = grid.dataset.loading;
  fetch(link.dataset.fragment, { credentials: "same-origin" })
    .then((response) => {
      if (!response.ok) throw new Error(String(response.status));
      return response.text();
    })
    .then((html) => {
      const item = link.closest("li");
      const holder = document.createElement("template");
      holder.innerHTML = html;
      item.replaceWith(holder.content);
      watch();
    })
    .catch(() => {
      // The plain link still works: following it loads the next page.
      delete link.dataset.busy;
      link.textContent = link.dataset.label || link.textContent;
    });
}

let observer = null;

function watch() {
  const link = document.querySelector("#gallery a.more");
  if (!link) return;
  link.dataset.label = link.textContent;
  if (observer) observer.disconnect();
  if ("IntersectionObserver" in window) {
    observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) loadMore(link);
    }, { rootMargin: "600px" });
    observer.observe(link);
  }
}

function copyCommand() {
  const button = document.getElementById("copy");
  const field = document.getElementById("command");
  if (!button || !field) return;
  button.addEventListener("click", () => {
    const done = () => {
      document.getElementById("copy-status").textContent = button.dataset.copied;
    };
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, () => {
        document.execCommand("copy");
        done();
      });
    } else {
      document.execCommand("copy");
      done();
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  watch();
  copyCommand();
});
