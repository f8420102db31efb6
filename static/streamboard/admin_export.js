// The export confirmation page, progressively enhanced (without JavaScript the
// checkboxes, all checked by default, still work and keep the allow-list's order):
// * "Select all" checks or unchecks every field, and shows whether all are checked;
// * each field gets "move up" and "move down" buttons: the form posts the fields
//   in the order they stand, and the file has its columns in that order.
"use strict";
{
  const form = document.getElementById("export-form");
  const toggle = document.getElementById("export-fields-toggle");
  const boxes = () => Array.from(form.querySelectorAll('input[name="fields"]'));
  if (form && toggle && boxes().length) {
    const sync = () => {
      const all = boxes();
      const checked = all.filter((box) => box.checked).length;
      toggle.checked = checked === all.length;
      toggle.indeterminate = checked > 0 && checked < all.length;
    };
    toggle.addEventListener("change", () => {
      for (const box of boxes()) box.checked = toggle.checked;
      sync();
    });
    form.addEventListener("change", (event) => {
      if (event.target.name === "fields") sync();
    });
    toggle.closest("label").hidden = false;
    sync();

    const button = (text, label, move) => {
      const element = document.createElement("button");
      element.type = "button";
      element.className = "export-move";
      element.textContent = text;
      element.setAttribute("aria-label", label);
      element.addEventListener("click", move);
      return element;
    };
    for (const box of boxes()) {
      const row = box.closest("label").parentElement;
      const name = box.closest("label").textContent.trim();
      row.classList.add("export-field");
      row.append(
        button("↑", `Move ${name} up`, () => {
          if (row.previousElementSibling) row.previousElementSibling.before(row);
        }),
        button("↓", `Move ${name} down`, () => {
          if (row.nextElementSibling) row.nextElementSibling.after(row);
        }),
      );
    }
  }
}
