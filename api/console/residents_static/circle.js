/* The coordinators' circle: street nodes coloured by walking minutes to the nearest place of a
   category, households beyond the circle, and the week's suggestions. Text only, never HTML. */
(function () {
  "use strict";
  function data(id) { return JSON.parse(document.getElementById(id).textContent); }
  var streets = data("linli-streets"), doc = data("linli-circle");
  var base = L.geoJSON(streets, {style: {color: "#8a939c", weight: 1, opacity: 0.8},
                                 interactive: false});
  var map = L.map("map").fitBounds(base.getBounds());
  base.addTo(map);
  map.attributionControl.addAttribution(streets.features[0].properties.attribution);
  map.fitBounds(base.getBounds());
  function colour(m) {
    if (m === null) { return "#d73027"; }
    return m <= 5 ? "#1a9850" : m <= 10 ? "#a6d96a" : m <= 15 ? "#fdae61" : "#d73027";
  }
  if (doc.layer) {
    var nodes = L.layerGroup().addTo(map);
    doc.layer.nodes.forEach(function (n) {
      L.circleMarker([n.lat, n.lon], {radius: 3, stroke: false, fillColor: colour(n.minutes),
                                      fillOpacity: 0.85, interactive: false}).addTo(nodes);
    });
    doc.layer.beyond.forEach(function (b) {
      L.circleMarker([b.lat, b.lon], {radius: 6, color: "#d73027", weight: 2, fillOpacity: 0})
        .bindTooltip(b.need_id + " · " + (b.minutes === null ? "—" : b.minutes + "′"))
        .addTo(map);
    });
  }
  function spots(rows, fill) {
    rows.forEach(function (r) {
      L.circleMarker([r.lat, r.lon], {radius: 10, color: "#fff", weight: 2, fillColor: fill,
                                      fillOpacity: 0.95})
        .bindTooltip(r.rank + ". " + r.near + (r.category_name ? " · " + r.category_name : "") +
                     " +" + r.gain, {permanent: true, direction: "right"})
        .addTo(map);
    });
  }
  spots(doc.partners, "#7b3fa0");
  spots(doc.recruits, "#2c7fb8");
}());
