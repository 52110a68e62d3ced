/* Linli's district map: the choropleth of matcher.district_report.district_map_document, with
   Leaflet. Used inline by district_map.html after linli-map.js, whose pieces it shares; loads
   nothing by itself. Labels are set as text, never as HTML, because names come from the
   communities' files. */
(function (global) {
  "use strict";

  // Shared with the plan's map: linli-map.js is loaded first.
  var lines = global.LinliMap.lines;
  var titleControl = global.LinliMap.titleControl;

  function chooser(doc, onChange) {
    var control = L.control({position: "topright"});
    control.onAdd = function () {
      var box = L.DomUtil.create("div", "linli-legend linli-choose");
      var head = document.createElement("div");
      head.className = "linli-legend-title";
      head.textContent = doc.choose;
      box.appendChild(head);
      doc.choices.forEach(function (choice) {
        var row = document.createElement("label");
        row.className = "linli-legend-row";
        var input = document.createElement("input");
        input.type = "radio";
        input.name = "linli-priority";
        input.value = choice.key;
        input.checked = choice.key === doc.selected;
        input.addEventListener("change", function () { onChange(choice.key); });
        row.appendChild(input);
        row.appendChild(document.createTextNode(choice.label));
        box.appendChild(row);
      });
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    return control;
  }

  function legendControl(doc) {
    var control = L.control({position: "bottomright"});
    control.onAdd = function () {
      var box = L.DomUtil.create("div", "linli-legend");
      var head = document.createElement("div");
      head.className = "linli-legend-title";
      head.textContent = doc.legend_title;
      box.appendChild(head);
      doc.legend.classes.concat([doc.legend.none]).forEach(function (row) {
        var item = document.createElement("div");
        item.className = "linli-legend-row";
        var mark = document.createElement("span");
        mark.className = "linli-swatch linli-area";
        mark.style.background = row.colour;
        item.appendChild(mark);
        item.appendChild(document.createTextNode(row.label));
        box.appendChild(item);
      });
      var used = {};
      doc.layers.communities.features.forEach(function (f) { used[f.properties.source] = true; });
      doc.legend.outlines.forEach(function (row) {
        if (!used[row.style]) { return; }
        var item = document.createElement("div");
        item.className = "linli-legend-row";
        var mark = document.createElement("span");
        mark.className = "linli-swatch linli-area linli-outline-" + row.style;
        item.appendChild(mark);
        item.appendChild(document.createTextNode(row.label));
        box.appendChild(item);
      });
      if (used.hull) {
        var note = document.createElement("div");
        note.className = "linli-legend-note";
        note.textContent = doc.note;
        box.appendChild(note);
      }
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    return control;
  }

  function draw(element, doc) {
    var map = global.LinliMap.baseMap(element, doc, {zoomSnap: 0.25});
    var selected = doc.selected;
    function style(f) {
      var p = f.properties;
      var unit = p.unit_id !== null;
      return {color: unit ? "#555555" : "#222222", weight: unit ? 1 : 2,
              dashArray: p.source === "hull" ? "6 4" : null, opacity: 0.9,
              fillColor: p.colour[selected], fillOpacity: unit ? 0.55 : 0.45};
    }
    function hover(f, layer) {
      layer.bindTooltip(lines(f.properties.label), {sticky: true});
      layer.on("mouseover", function () { layer.setStyle({weight: 3.5}); });
      layer.on("mouseout", function () { layer.setStyle(style(f)); });
    }
    var communities = L.geoJSON(doc.layers.communities, {style: style, onEachFeature: hover,
                                                         attribution: doc.attribution});
    var units = L.geoJSON(doc.layers.units, {style: style, onEachFeature: hover});
    // The communities' names, always shown at the middle of their areas.
    var names = L.layerGroup();
    communities.eachLayer(function (layer) {
      L.tooltip({permanent: true, direction: "center", className: "linli-area-name",
                 interactive: false})
        .setLatLng(layer.getBounds().getCenter())
        .setContent(document.createTextNode(layer.feature.properties.community))
        .addTo(names);
    });
    communities.addTo(map);
    names.addTo(map);
    var overlays = {};
    overlays[doc.names.communities] = communities;
    if (doc.layers.units.features.length) { overlays[doc.names.units] = units; }
    L.control.layers(null, overlays, {collapsed: false, position: "topright"}).addTo(map);
    chooser(doc, function (key) {
      selected = key;
      communities.setStyle(style);
      units.setStyle(style);
    }).addTo(map);
    L.control.scale({imperial: false, maxWidth: 160}).addTo(map);
    titleControl(doc).addTo(map);
    legendControl(doc).addTo(map);
    if (communities.getLayers().length) {
      // Room on the right for the choices and the legend.
      map.fitBounds(communities.getBounds(), {paddingTopLeft: [20, 20],
                                              paddingBottomRight: [300, 20]});
    } else {
      map.setView([31.2287, 121.4787], 13);
    }
    return map;
  }

  global.LinliDistrictMap = {draw: draw};
})(window);
