/* Linli's map: draws the document matcher.mapview.map_document builds, with Leaflet.
   Used inline by map.html and served by the web console; loads nothing by itself. Labels are
   set as text, never as HTML, because names come from the community's spreadsheets. */
(function (global) {
  "use strict";

  function lines(texts) {
    var box = document.createElement("div");
    (texts || []).forEach(function (text, i) {
      if (i) { box.appendChild(document.createElement("br")); }
      box.appendChild(document.createTextNode(String(text)));
    });
    return box;
  }

  function tooltip(feature, layer) {
    if (feature.properties && feature.properties.label) {
      layer.bindTooltip(lines(feature.properties.label));
    }
  }

  var FILL = {covered: 0.9, partial: 0.4, unmet: 0};
  var MANY_CIRCLES = 12;

  function swatch(row) {
    var mark = document.createElement("span");
    mark.className = "linli-swatch linli-" + row.symbol;
    mark.style.borderColor = row.colour;
    if (row.symbol === "need" || row.symbol === "need-covered" || row.symbol === "volunteer" ||
        row.symbol === "merchant") {
      mark.style.background = row.colour;
    } else if (row.symbol === "need-partial") {
      mark.style.background = "linear-gradient(90deg, " + row.colour + " 50%, transparent 50%)";
    }
    return mark;
  }

  function legendControl(doc) {
    var control = L.control({position: "bottomright"});
    control.onAdd = function () {
      var box = L.DomUtil.create("div", "linli-legend");
      var head = document.createElement("div");
      head.className = "linli-legend-title";
      head.textContent = doc.legend_title;
      box.appendChild(head);
      doc.legend.forEach(function (row) {
        if (row.symbol === "street" && !doc.layers.streets.features.length) { return; }
        var item = document.createElement("div");
        item.className = "linli-legend-row";
        item.appendChild(swatch(row));
        item.appendChild(document.createTextNode(row.label));
        box.appendChild(item);
      });
      var note = document.createElement("div");
      note.className = "linli-legend-note";
      note.textContent = doc.note;
      box.appendChild(note);
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    return control;
  }

  function titleControl(doc) {
    var control = L.control({position: "topleft"});
    control.onAdd = function () {
      var box = L.DomUtil.create("div", "linli-title");
      box.appendChild(lines([doc.title, doc.summary]));
      return box;
    };
    return control;
  }

  // A Leaflet map with the document's tile layers, if any were configured (none by default).
  function baseMap(element, doc, options) {
    var map = L.map(element, options);
    map.attributionControl.setPrefix("Leaflet");
    (doc.tiles || []).forEach(function (t) {
      L.tileLayer(t.url, {attribution: t.attribution, subdomains: t.subdomains,
                          maxZoom: t.maxZoom}).addTo(map);
    });
    return map;
  }

  function draw(element, doc) {
    var map = baseMap(element, doc, {preferCanvas: true, zoomSnap: 0.25});
    var hasTiles = (doc.tiles || []).length > 0;
    var layers = doc.layers;
    var streets = L.geoJSON(layers.streets, {
      interactive: false, attribution: doc.attribution,
      style: {color: "#8a939c", weight: 1.3, opacity: hasTiles ? 0.5 : 0.9}});
    var circles = L.geoJSON(layers.circles, {
      style: {color: "#2ca02c", weight: 1.5, dashArray: "5 4", opacity: 0.8,
              fillColor: "#2ca02c", fillOpacity: 0.05},
      onEachFeature: tooltip});
    var needs = L.geoJSON(layers.needs, {
      pointToLayer: function (f, at) {
        var p = f.properties;
        return L.circleMarker(at, {radius: 7, color: p.colour, weight: 2.5, fill: true,
                                   fillColor: p.colour, fillOpacity: FILL[p.state]});
      },
      onEachFeature: tooltip});
    // Pointing at a busy volunteer shows her walk even when the walks layer is off.
    var walkOf = {};
    circles.eachLayer(function (layer) {
      walkOf[layer.feature.properties.volunteer_id] = layer.feature;
    });
    var shown = L.layerGroup().addTo(map);
    var volunteers = L.geoJSON(layers.volunteers, {
      pointToLayer: function (f, at) {
        var colour = f.properties.busy ? "#2ca02c" : "#8c8c8c";
        return L.circleMarker(at, {radius: 3.5, color: colour, weight: 1, fill: true,
                                   fillColor: colour, fillOpacity: 0.9});
      },
      onEachFeature: function (f, layer) {
        tooltip(f, layer);
        var walk = walkOf[f.properties.id];
        if (!walk) { return; }
        layer.on("mouseover", function () {
          shown.clearLayers();
          L.geoJSON(walk, {interactive: false, style: {color: "#2ca02c", weight: 2.5,
                                                        fillOpacity: 0.12}}).addTo(shown);
        });
        layer.on("mouseout", function () { shown.clearLayers(); });
      }});
    var merchants = L.geoJSON(layers.merchants, {
      pointToLayer: function (f, at) {
        return L.marker(at, {icon: L.divIcon({className: "linli-merchant",
                                                iconSize: [12, 12]})});
      },
      onEachFeature: tooltip});
    var order = [["streets", streets], ["circles", circles], ["volunteers", volunteers],
                 ["needs", needs], ["merchants", merchants]];
    var overlays = {};
    order.forEach(function (pair) {
      var count = layers[pair[0]].features.length;
      if (!count) { return; }
      // Many overlapping walks hide the map: then they wait in the layer list until asked for.
      if (pair[0] !== "circles" || count <= MANY_CIRCLES) { pair[1].addTo(map); }
      overlays[doc.names[pair[0]]] = pair[1];
    });
    L.control.layers(null, overlays, {collapsed: false, position: "topright"}).addTo(map);
    L.control.scale({imperial: false, maxWidth: 160}).addTo(map);
    titleControl(doc).addTo(map);
    legendControl(doc).addTo(map);
    var bounds = L.latLngBounds([]);
    [needs, volunteers, merchants].concat(map.hasLayer(circles) ? [circles] : []).forEach(function (layer) {
      if (layer.getLayers().length) { bounds.extend(layer.getBounds()); }
    });
    if (!bounds.isValid() && streets.getLayers().length) { bounds = streets.getBounds(); }
    if (bounds.isValid()) {
      map.fitBounds(bounds, {padding: [20, 20]});
    } else {
      map.setView([22.534, 114.018], 14);
    }
    return map;
  }

  // The pieces the district map (linli-district-map.js, loaded after this file) shares.
  global.LinliMap = {draw: draw, lines: lines, titleControl: titleControl, baseMap: baseMap};
})(window);
