// The export confirmation page's "Select all" box: checks or unchecks every field,
// and shows whether all are checked. Without JavaScript it stays hidden; the
// fields' own checkboxes (all checked by default) still work.
"use strict";
{
  const toggle = document.getElementById("export-fields-toggle");
  const boxes = Array.from(document.querySelectorAll('#export-form input[name="fields"]'));
  if (toggle && boxes.length) {
    const sync = () => {
      const checked = boxes.filter((box) => box.checked).length;
      toggle.checked = checked === boxes.length;
      toggle.indeterminate = checked > 0 && checked < boxes.length;
    };
    toggle.addEventListener("change", () => {
      for (const box of boxes) box.checked = toggle.checked;
      sync();
    });
    for (const box of boxes) box.addEventListener("change", sync);
    toggle.closest("label").hidden = false;
    sync();
  }
}
