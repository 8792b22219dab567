// Progressive enhancement only: every page works without this file.
// A change form's button is disabled once submitted, so a double click posts once.
document.addEventListener("submit", function (ev) {
  var b = ev.target.querySelector("button[type=submit]");
  if (b && ev.target.method === "post") {
    setTimeout(function () { b.disabled = true; b.textContent = b.textContent + "…"; }, 0);
  }
});
