// The diagnostic-mode page: show diagnostic.error, offer diagnostic.restart.
// Text only goes through textContent: the error message is never parsed as HTML.

import { call, Code } from "./rpc.js";

const POLL_MS = 1000; // how often to look whether the restarted server answers

const $ = (id) => document.getElementById(id);

function say(text) {
  $("status").textContent = text;
}

async function showError() {
  try {
    const error = await call("diagnostic.error");
    if (error === null) {
      // Not (or no longer) in diagnostic mode: the dashboard is back.
      window.location.replace("/");
      return;
    }
    $("title").textContent = `${error.message} (${error.code})`;
    $("details").textContent = (error.data && error.data.details) || "";
    $("restart").hidden = false;
  } catch (err) {
    $("title").textContent = "The server did not say what is wrong.";
    $("details").textContent = err.details || String(err);
  }
}

function waitForServer() {
  window.setTimeout(async () => {
    try {
      await call("echo", { message: "diagnostic" });
      window.location.replace("/");
    } catch {
      waitForServer();
    }
  }, POLL_MS);
}

async function restart() {
  $("restart").disabled = true;
  say("Restarting…");
  try {
    await call("diagnostic.restart");
    say("Restarting… this page reloads when the server answers again.");
    waitForServer();
  } catch (err) {
    $("restart").disabled = false;
    if (err.code === Code.AUTHORIZATION) {
      say("Restarting needs root on the server: run `start-cli diagnostic restart` there.");
    } else {
      say(`The server could not restart: ${err.details || err}`);
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("restart").addEventListener("click", restart);
  showError();
});
