// The bundle Panel loads for FlowCanvas: the component module and the React it renders
// with (Panel's ReactComponent takes React and createRoot from the bundle's default
// export, so nothing is imported from a CDN).
import * as FlowCanvas from "./FlowCanvas.jsx"
import * as React from "react"
import { createRoot } from "react-dom/client"

export default { FlowCanvas, React, createRoot }
